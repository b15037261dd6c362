"""The simulator's state: sellers, orders, Cloudflare's counters, faults and what was observed.

One lock guards it all. Each method holds it only for in-memory work; the HTTP layer sleeps
(latency, hangs) outside it, so slow requests never serialise the others.
"""

from __future__ import annotations

import bisect
import itertools
import random
import threading
import time
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from shopify_bm.backmarket.simulator.faults import FaultDraw, Faults, RateLimit, draw_faults
from shopify_bm.backmarket.simulator.observations import RequestLog, RequestRecord, Stats
from shopify_bm.backmarket.simulator.orders import (
    LineSeed,
    Order,
    OrderLine,
    OrderSeed,
    OrderState,
    build_order,
    utc_now,
)
from shopify_bm.backmarket.simulator.pages import OrderQuery, paginate
from shopify_bm.backmarket.simulator.rules import (
    AlreadyShippedError,
    ApiError,
    Registration,
    UpdateOrder,
    apply_update,
    parse_body,
    register_identifiers,
)
from shopify_bm.backmarket.simulator.traffic import Cloudflare, Rejection

FIRST_LINE_ID = 10_000_001


class SeedError(ValueError):
    """A seed the simulator cannot take: unknown seller or an id already used."""


@dataclass(frozen=True)
class Admission:
    """Cloudflare's verdict and the fault draw for one request, taken when it arrived."""

    received_monotonic: float
    received_wall: float
    faults: Faults
    rejection: Rejection | None = None  # answered 429 at once
    retry_after: float = 0.0  # seconds left in the block, for `Retry-After`
    draw: FaultDraw = field(default_factory=FaultDraw)


class BackMarketSimulator:
    """A fake Back Market seller API: one account per token, with faults and counters."""

    def __init__(
        self,
        tokens: Iterable[str] = (),
        *,
        faults: Faults | None = None,
        seller_faults: Mapping[str, Faults] | None = None,
        rate_limit: RateLimit | None = None,
        seed: int = 0,
        log_size: int = 100_000,
    ) -> None:
        """`tokens` open seller accounts; `faults` apply to all but the sellers in `seller_faults`.

        `seed` makes the faults repeatable; `log_size` bounds the request log (counters are not).
        """
        self._lock = threading.Lock()
        self._sellers: set[str] = set(tokens)
        self._initial_faults = faults or Faults()
        self._initial_seller_faults = dict(seller_faults or {})
        self._initial_rate_limit = rate_limit or RateLimit()
        self._seed = seed
        self._log_size = log_size
        self._clear(self._initial_rate_limit)

    def _clear(self, rate_limit: RateLimit) -> None:
        self._rng = random.Random(self._seed)  # noqa: S311  reproducible faults, not secrets
        self._faults = self._initial_faults
        self._seller_faults = dict(self._initial_seller_faults)
        self._cloudflare = Cloudflare(rate_limit)
        self._log = RequestLog(self._log_size)
        self._orders: dict[int, Order] = {}
        self._seller_orders: dict[str, list[Order]] = {}
        self._lines: dict[int, tuple[Order, OrderLine]] = {}
        self._line_ids = itertools.count(FIRST_LINE_ID)
        self._ships: Counter[int] = Counter()
        self._reship_rejections: Counter[int] = Counter()
        self._imei_writes: Counter[int] = Counter()
        self._serial_writes: Counter[int] = Counter()
        self._imei_patches: Counter[int] = Counter()
        self._ignored_identifiers: Counter[int] = Counter()

    def reset(self) -> None:
        """Forget orders, traffic, counters and runtime fault changes; keep sellers and limit."""
        with self._lock:
            self._clear(self._cloudflare.rate_limit)

    # Sellers and orders.

    def add_seller(self, token: str) -> None:
        """Open a seller account reached with `Authorization: Basic <token>`."""
        with self._lock:
            self._sellers.add(token)

    def has_seller(self, token: str) -> bool:
        """True when the token opens an account."""
        with self._lock:
            return token in self._sellers

    def add_order(
        self,
        seller: str,
        order_id: int,
        lines: Sequence[tuple[str, int] | LineSeed],
        state: OrderState = 1,
        **options: Any,
    ) -> dict[str, Any]:
        """Create an order; `lines` are `(sku, quantity)` pairs or `LineSeed`s. Returns its JSON.

        `state` is the order state: 1 paid (lines to accept), 3 accepted, 9 shipped; 0, 8 and 10
        are orders that must not ship. `options` are the other `OrderSeed` fields.
        """
        seeds = [
            line if isinstance(line, LineSeed) else LineSeed(sku=line[0], quantity=line[1])
            for line in lines
        ]
        seed = OrderSeed(seller=seller, order_id=order_id, state=state, lines=seeds, **options)
        return self.add_orders([seed])[0]

    def add_orders(self, seeds: Iterable[OrderSeed]) -> list[dict[str, Any]]:
        """Create many orders at once, all or none; returns their JSON."""
        seeds = list(seeds)
        now = utc_now()
        with self._lock:
            self._check_seeds(seeds)
            orders = []
            for seed in seeds:
                missing = sum(1 for line in seed.lines if line.id is None)
                order = build_order(seed, self._free_line_ids(missing), now)
                self._orders[order.order_id] = order
                bisect.insort(
                    self._seller_orders.setdefault(order.seller, []),
                    order,
                    key=lambda o: (o.date_creation, o.order_id),
                )
                self._lines.update((line.id, (order, line)) for line in order.lines)
                orders.append(order.as_json())
            return orders

    def _check_seeds(self, seeds: Sequence[OrderSeed]) -> None:
        order_ids = [seed.order_id for seed in seeds]
        line_ids = [line.id for seed in seeds for line in seed.lines if line.id is not None]
        for seed in seeds:
            if seed.seller not in self._sellers:
                raise SeedError(f"order {seed.order_id}: no seller has the token {seed.seller!r}")
        for kind, ids, taken in (
            ("order", order_ids, self._orders),
            ("orderline", line_ids, self._lines),
        ):
            reused = sorted(i for i, n in Counter(ids).items() if n > 1 or i in taken)
            if reused:
                raise SeedError(f"{kind} ids already used: {reused}")

    def _free_line_ids(self, count: int) -> list[int]:
        free: list[int] = []
        while len(free) < count:
            candidate = next(self._line_ids)
            if candidate not in self._lines:
                free.append(candidate)
        return free

    def order(self, order_id: int) -> dict[str, Any] | None:
        """Any seller's order as JSON, for assertions; None when it does not exist."""
        with self._lock:
            order = self._orders.get(order_id)
            return order.as_json() if order else None

    # The Back Market API, for the seller who owns `seller` (a known token).

    def get_order(self, seller: str, order_id: int) -> dict[str, Any]:
        """`GET /ws/orders/{order_id}`."""
        with self._lock:
            return self._order_of(seller, order_id).as_json()

    def list_orders(self, seller: str, query: OrderQuery) -> tuple[int, list[dict[str, Any]], bool]:
        """`GET /ws/orders`: the match count, one page of orders, and whether a next page exists."""
        with self._lock:
            page = paginate(self._seller_orders.get(seller, []), query)
            return page.count, [order.as_json() for order in page.orders], page.has_next

    def update_order(self, seller: str, order_id: int, body: Any) -> dict[str, Any]:
        """`POST /ws/orders/{order_id}`: accept, ship, cancel or refund lines."""
        update = parse_body(UpdateOrder, body)
        with self._lock:
            order = self._order_of(seller, order_id)
            try:
                outcome = apply_update(order, update, utc_now())
            except AlreadyShippedError:
                self._reship_rejections[order_id] += 1
                raise
            if outcome.shipped:
                self._ships[order_id] += 1
            if outcome.identifiers_ignored:
                self._ignored_identifiers[order_id] += 1
            if outcome.registration:
                self._count_registration(outcome.registration)
            return order.as_json()

    def patch_orderline(self, seller: str, line_id: int, body: Any) -> dict[str, str]:
        """`PATCH /ws/orderlines/{id}`: register the line's IMEI and/or serial number."""
        with self._lock:
            found = self._lines.get(line_id)
            if found is None or found[0].seller != seller:
                raise ApiError(404, "The orderline doesn't exist")
            order, line = found
            self._imei_patches[line_id] += 1
            self._count_registration(register_identifiers(order, line, body, utc_now()))
            return {"imei": line.imei, "serial_number": line.serial_number}

    def _order_of(self, seller: str, order_id: int) -> Order:
        order = self._orders.get(order_id)
        if order is None or order.seller != seller:
            raise ApiError(404, "The order doesn't exist")
        return order

    def _count_registration(self, registration: Registration) -> None:
        if registration.imei:
            self._imei_writes[registration.line_id] += 1
        if registration.serial_number:
            self._serial_writes[registration.line_id] += 1

    # Cloudflare and faults.

    def set_faults(self, faults: Faults | None, seller: str | None = None) -> None:
        """Set the global faults, or one seller's (which then replace the global ones for it).

        `None` clears: no global faults, or the seller falls back to the global ones.
        """
        with self._lock:
            if seller is None:
                self._faults = faults or Faults()
            elif faults is None:
                self._seller_faults.pop(seller, None)
            else:
                self._seller_faults[seller] = faults

    def force_429(self, count: int, seller: str | None = None) -> None:
        """Answer the next `count` requests (of one seller, or of anyone) with 429."""
        with self._lock:
            self._cloudflare.force_429(count, seller)

    def set_rate_limit(self, rate_limit: RateLimit) -> None:
        """Change Cloudflare's limit; windows and blocks in progress carry on."""
        with self._lock:
            self._cloudflare.rate_limit = rate_limit

    @property
    def rate_limit(self) -> RateLimit:
        """The limit in force."""
        with self._lock:
            return self._cloudflare.rate_limit

    def admit(self, token: str | None, *, write: bool) -> Admission:
        """Count a request arriving with `token`, and decide its 429 or its injected faults."""
        with self._lock:
            now, wall = time.monotonic(), time.time()
            key = token or ""
            faults = self._seller_faults.get(key, self._faults)
            rejection, retry_after = self._cloudflare.admit(key, now)
            if rejection:
                return Admission(now, wall, faults, rejection, retry_after)
            return Admission(now, wall, faults, draw=draw_faults(faults, self._rng, write=write))

    # Observation.

    def record(self, record: RequestRecord) -> None:
        """Log an answered (or dropped) request; its `seq` is assigned here."""
        with self._lock:
            self._log.add(record)

    def requests(self, since: int = 0, limit: int | None = None) -> list[RequestRecord]:
        """Logged requests with `seq` above `since`, oldest first, at most `limit` of them.

        The log keeps the latest `log_size` requests; older ones are gone.
        """
        with self._lock:
            return self._log.since(since, limit)

    def stats(self) -> Stats:
        """A snapshot of the counters."""
        with self._lock:
            cloudflare = self._cloudflare
            return Stats(
                requests=self._log.count,
                statuses=dict(self._log.statuses),
                ships=dict(self._ships),
                reship_rejections=dict(self._reship_rejections),
                imei_writes=dict(self._imei_writes),
                serial_writes=dict(self._serial_writes),
                imei_patches=dict(self._imei_patches),
                ignored_identifiers=dict(self._ignored_identifiers),
                requests_per_seller=dict(cloudflare.requests),
                rate_limited=dict(cloudflare.rate_limited),
                peak_requests_per_window=dict(cloudflare.peaks),
            )
