"""The export decision: what to tell Back Market about one fulfilled order, or why not.

Pure: no Flask, HTTP or SQL. Two stages, because the second needs Back Market's view of the order:
`evaluate_order` reads the Shopify side (is it ours, is it fulfilled, are the IMEIs right), and
`plan_export` turns that and the Back Market order into the calls still to make.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from shopify_bm.backmarket.models import Order as BackMarketOrder
from shopify_bm.backmarket.models import OrderLine, OrderLineState, OrderState, Shipment
from shopify_bm.backmarket.shippers import shipper_for
from shopify_bm.matching import MatchingPolicy, MatchResult, match_order
from shopify_bm.shipments import Tracking, backmarket_order_id, is_fully_fulfilled, tracking_of
from shopify_bm.shopify.payloads import Fulfillment, Order
from shopify_bm.tags import Problem, quote


class ExportProblemCode(StrEnum):
    """Reasons beyond the tags that block an export; stable like `tags.ProblemCode`."""

    NO_TRACKING = "no_tracking"
    IMEI_ALREADY_EXPORTED = "imei_already_exported"
    BACKMARKET_ORDER_NOT_SHIPPABLE = "backmarket_order_not_shippable"
    BACKMARKET_LINE_CANCELLED = "backmarket_line_cancelled"
    BACKMARKET_LINE_QUANTITY = "backmarket_line_quantity"
    BACKMARKET_LINE_UNMATCHED = "backmarket_line_unmatched"
    BACKMARKET_LINE_NOT_ACCEPTED = "backmarket_line_not_accepted"
    BACKMARKET_IMEI_CONFLICT = "backmarket_imei_conflict"


# Order states in which Back Market does not want the parcel shipped (reference §4).
_UNSHIPPABLE_ORDER_STATES = frozenset({OrderState.NEW, OrderState.PENDING, OrderState.NOT_PAID})
_DEAD_LINE_STATES = frozenset(
    {
        OrderLineState.CANCELLED,
        OrderLineState.REFUNDED_BEFORE_SHIPPING,
        OrderLineState.REFUNDED_AFTER_SHIPPING,
        OrderLineState.NOT_PAID,
    }
)


@dataclass(frozen=True)
class ExportPolicy:
    """A shop's export settings."""

    ship_without_imei: bool = False
    exempt_skus: frozenset[str] = frozenset()
    accept_orders: bool = True  # accept Back Market lines still waiting for acceptance
    note_attribute: str = "backmarket_order_id"
    tag_prefix: str = "BM:"

    def matching(self, overrides: Overrides) -> MatchingPolicy:
        """The IMEI matching policy, with a per-order override applied."""
        return MatchingPolicy(
            self.ship_without_imei or overrides.ship_without_imei, self.exempt_skus
        )


@dataclass(frozen=True)
class Overrides:
    """What the merchant explicitly allowed for one order."""

    ship_without_imei: bool = False  # ship, and send no IMEI at all
    allow_reused_imeis: bool = False  # an IMEI already exported on another order is fine


@dataclass(frozen=True)
class Ignore:
    """Nothing to export, and nothing wrong: not a Back Market order, or not fulfilled yet."""

    reason: str


@dataclass(frozen=True)
class Block:
    """The export waits for the merchant; each problem says what to do."""

    problems: tuple[Problem, ...]


@dataclass(frozen=True)
class ReadyToExport:
    """The Shopify side is complete: which Back Market order, how it shipped, which IMEIs."""

    backmarket_order_id: int
    tracking: Tracking
    match: MatchResult
    send_imeis: bool
    # IMEIs by SKU (case-folded), in tag order.
    imeis_by_sku: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    @property
    def imeis(self) -> tuple[str, ...]:
        """Every IMEI this export will send."""
        return tuple(i for imeis in self.imeis_by_sku.values() for i in imeis)


@dataclass(frozen=True)
class ExportPlan:
    """The Back Market calls still to make, in order."""

    accept_skus: tuple[str, ...]
    ship: Shipment | None  # None: Back Market already shows the order shipped
    imeis_by_line: Mapping[int, str]  # orderline id -> IMEI, for every line that carries one


def evaluate_order(
    order: Order,
    fulfillments: Sequence[Fulfillment],
    policy: ExportPolicy,
    overrides: Overrides = Overrides(),
) -> Ignore | Block | ReadyToExport:
    """Decide from the Shopify order alone whether it can go to Back Market."""
    bm_id = backmarket_order_id(order, policy.note_attribute, policy.tag_prefix)
    if bm_id is None:
        return Ignore("not a Back Market order")
    if order.cancelled_at is not None:
        return Ignore("the order is cancelled in Shopify")
    if not is_fully_fulfilled(order, fulfillments):
        return Ignore("not every unit is fulfilled in Shopify yet")

    problems: list[Problem] = []
    tracking = tracking_of(fulfillments)
    if tracking is None or not tracking.number:
        problems.append(
            Problem(
                ExportProblemCode.NO_TRACKING,
                "The fulfillment has no tracking number, and Back Market requires one. Add the "
                "tracking number to the fulfillment in Shopify.",
            )
        )
    send_imeis = not overrides.ship_without_imei
    match = match_order(order.matching_lines(), order.tags, policy.matching(overrides))
    if send_imeis:
        problems.extend(match.blocking_problems)
    if problems or tracking is None:
        return Block(tuple(problems))

    imeis_by_sku: dict[str, list[str]] = defaultdict(list)
    if send_imeis:
        for line in match.lines:
            if line.sku and line.imeis:
                imeis_by_sku[line.sku.strip().casefold()].extend(line.imeis)
    return ReadyToExport(
        bm_id, tracking, match, send_imeis, {k: tuple(v) for k, v in imeis_by_sku.items()}
    )


def reused_imei_problems(
    ready: ReadyToExport, exported_elsewhere: Mapping[str, str], overrides: Overrides
) -> tuple[Problem, ...]:
    """IMEIs already sent with another order (IMEI -> that order's name), unless allowed."""
    if overrides.allow_reused_imeis:
        return ()
    return tuple(
        Problem(
            ExportProblemCode.IMEI_ALREADY_EXPORTED,
            f"IMEI {imei} was already exported with order {other}. The same phone cannot ship "
            "twice: check the tag for a scanning mistake, or allow the reuse if this phone "
            "really came back and was sold again.",
            imei=imei,
        )
        for imei, other in exported_elsewhere.items()
        if imei in ready.imeis
    )


def plan_export(
    ready: ReadyToExport,
    bm_order: BackMarketOrder,
    policy: ExportPolicy,
    overrides: Overrides,
    *,
    already_shipped_by_us: bool,
    now: datetime,
) -> Block | ExportPlan:
    """The calls still needed to tell Back Market, given its current view of the order."""
    if bm_order.state in _UNSHIPPABLE_ORDER_STATES:
        return Block(
            (
                Problem(
                    ExportProblemCode.BACKMARKET_ORDER_NOT_SHIPPABLE,
                    f"Back Market order {bm_order.order_id} is in state {bm_order.state} "
                    "(payment not validated), so it must not ship yet. Wait for Back Market, "
                    "then retry.",
                ),
            )
        )
    problems: list[Problem] = []
    for line in bm_order.orderlines:
        if line.state in _DEAD_LINE_STATES:
            problems.append(
                Problem(
                    ExportProblemCode.BACKMARKET_LINE_CANCELLED,
                    f"Back Market line {line.id} ({quote(line.listing or '')}) is cancelled or "
                    f"refunded (state {line.state}); check the order in the Back Market Back "
                    "Office before shipping it.",
                    sku=line.listing,
                )
            )
    shipped = already_shipped_by_us or bm_order.is_shipped
    imeis_by_line: dict[int, str] = {}
    if ready.send_imeis:
        assignment = _assign_to_backmarket_lines(ready, bm_order.orderlines, policy, overrides)
        if isinstance(assignment, Block):
            problems.extend(assignment.problems)
        else:
            imeis_by_line = assignment
            problems.extend(_imei_conflicts(bm_order.orderlines, imeis_by_line))
    # Accepting is one POST per SKU (`sku` is required for new_state 2).
    accept = (
        ()
        if shipped
        else tuple(
            dict.fromkeys(
                line.listing for line in bm_order.lines_awaiting_acceptance if line.listing
            )
        )
    )
    if accept and not policy.accept_orders:
        problems.append(
            Problem(
                ExportProblemCode.BACKMARKET_LINE_NOT_ACCEPTED,
                f"Back Market order {bm_order.order_id} still has lines waiting for acceptance. "
                "Accept them in the Back Market Back Office (or let the app accept orders), "
                "then retry.",
            )
        )
    if problems:
        return Block(tuple(problems))
    ship = None if shipped else _shipment(ready, bm_order, imeis_by_line, now)
    return ExportPlan(accept, ship, imeis_by_line)


def imei_patches_due(
    bm_order: BackMarketOrder, imeis_by_line: Mapping[int, str], done: Iterable[int]
) -> list[tuple[int, str]]:
    """(orderline id, IMEI) pairs Back Market does not hold yet, after the order shipped."""
    done_ids = set(done)
    registered = {line.id: (line.imei or "").strip() for line in bm_order.orderlines}
    return [
        (line_id, imei)
        for line_id, imei in imeis_by_line.items()
        if line_id not in done_ids and registered.get(line_id) != imei
    ]


def _assign_to_backmarket_lines(
    ready: ReadyToExport,
    lines: Sequence[OrderLine],
    policy: ExportPolicy,
    overrides: Overrides,
) -> dict[int, str] | Block:
    """Give each Back Market line (quantity 1) its IMEI, matching its listing to Shopify SKUs."""
    live = [line for line in lines if line.state not in _DEAD_LINE_STATES]
    pools = {sku: list(imeis) for sku, imeis in ready.imeis_by_sku.items()}
    if len(live) == 1 and len(pools) == 1 and (live[0].listing or "").casefold() not in pools:
        # One line each side: the listing SKU may differ from Shopify's; the pairing is certain.
        pools = {(live[0].listing or "").casefold(): next(iter(pools.values()))}
    waive = policy.ship_without_imei or overrides.ship_without_imei
    problems: list[Problem] = []
    assignment: dict[int, str] = {}
    for line in live:
        key = (line.listing or "").casefold()
        if key in policy.matching(overrides).exempt_casefolded:
            continue
        pool = pools.get(key)
        if line.quantity > 1:
            if not waive:
                problems.append(
                    Problem(
                        ExportProblemCode.BACKMARKET_LINE_QUANTITY,
                        f"Back Market line {line.id} ({quote(line.listing or '')}) has quantity "
                        f"{line.quantity}; Back Market's API cannot take IMEIs for such a line. "
                        "Ship this order without IMEI (and send the IMEIs to Back Market "
                        "support), or ask Back Market to split the line.",
                        sku=line.listing,
                    )
                )
            continue
        if pool:
            assignment[line.id] = pool.pop(0)
        elif pool is None and not waive:
            problems.append(
                Problem(
                    ExportProblemCode.BACKMARKET_LINE_UNMATCHED,
                    f"Back Market line {line.id} has SKU {quote(line.listing or '')}, which is "
                    "on no line of the Shopify order; the SKUs must match so each IMEI goes to "
                    "the right phone.",
                    sku=line.listing,
                )
            )
        elif not waive:
            # More phones of this SKU at Back Market than IMEIs for it in Shopify: without this
            # the line would ship silently without an IMEI.
            problems.append(
                Problem(
                    ExportProblemCode.BACKMARKET_LINE_UNMATCHED,
                    f"Back Market line {line.id} ({quote(line.listing or '')}) has no IMEI left: "
                    "Back Market's order has more units of this SKU than the Shopify order "
                    "ships. Check both orders before shipping.",
                    sku=line.listing,
                )
            )
    return Block(tuple(problems)) if problems else assignment


def _imei_conflicts(lines: Sequence[OrderLine], imeis_by_line: Mapping[int, str]) -> list[Problem]:
    """Back Market IMEIs are write-once: a different value already there cannot be changed."""
    problems = []
    for line in lines:
        ours = imeis_by_line.get(line.id)
        theirs = (line.imei or "").strip()
        if ours and theirs and theirs != ours:
            problems.append(
                Problem(
                    ExportProblemCode.BACKMARKET_IMEI_CONFLICT,
                    f"Back Market line {line.id} already holds IMEI {theirs}, but the tags say "
                    f"{ours}. Back Market cannot change a registered IMEI: fix the tag if it is "
                    "wrong, or contact Back Market support.",
                    sku=line.listing,
                    imei=ours,
                )
            )
    return problems


def _shipment(
    ready: ReadyToExport,
    bm_order: BackMarketOrder,
    imeis_by_line: Mapping[int, str],
    now: datetime,
) -> Shipment:
    tracking = ready.tracking
    # The ship POST only honours `imei` for one line of quantity 1; others get PATCHes after.
    single = bm_order.takes_inline_imei
    imei = imeis_by_line.get(bm_order.orderlines[0].id) if single else None
    return Shipment(
        tracking_number=tracking.number or "",
        tracking_url=tracking.url,
        shipper=shipper_for(tracking.company),
        date_shipping=tracking.shipped_at or now,
        imei=imei,
    )
