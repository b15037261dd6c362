"""What the simulator saw: a bounded log of requests, and the counters invariants are checked on."""

from __future__ import annotations

import dataclasses
import itertools
from collections import Counter, deque
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class RequestRecord:
    """One Back Market API request as the simulator answered it."""

    seq: int  # 1, 2, … in the order answers were logged
    method: str
    path: str  # with the query string
    seller: str | None  # the token sent, known or not
    status: int | None  # None: the connection was dropped without an answer
    fault: str | None  # the injected failure, if any
    received_monotonic: float
    received_wall: float
    body: Any  # the parsed JSON body, None when there was none or it was unreadable

    def as_json(self) -> dict[str, Any]:
        """The record as `GET /_sim/requests` lists it."""
        return dataclasses.asdict(self)


class RequestLog:
    """The latest `size` records, so a long benchmark keeps a flat memory; counts them all."""

    def __init__(self, size: int) -> None:
        self._records: deque[RequestRecord] = deque(maxlen=size)
        self.count = 0
        self.statuses: Counter[int] = Counter()  # 0 counts dropped connections

    def add(self, record: RequestRecord) -> None:
        """Number and keep a record (its `seq` is replaced)."""
        self.count += 1
        self.statuses[record.status or 0] += 1
        self._records.append(dataclasses.replace(record, seq=self.count))

    def since(self, seq: int, limit: int | None) -> list[RequestRecord]:
        """Records numbered above `seq`, oldest first, at most `limit` of them."""
        if not self._records:
            return []
        start = max(seq - self._records[0].seq + 1, 0)
        return list(
            itertools.islice(self._records, start, None if limit is None else start + limit)
        )


@dataclass(frozen=True)
class Stats:
    """Counters for the invariants tests and benchmarks check (ids are order or line ids)."""

    requests: int
    statuses: dict[int, int]  # HTTP status -> answers; 0 counts dropped connections
    ships: dict[int, int]  # order -> state-3 updates that shipped something
    reship_rejections: dict[int, int]  # order -> "order already shipped" refusals
    imei_writes: dict[int, int]  # orderline -> requests that stored its IMEI
    serial_writes: dict[int, int]  # orderline -> requests that stored its serial number
    imei_patches: dict[int, int]  # orderline -> PATCH requests that reached it, any answer
    ignored_identifiers: dict[int, int]  # order -> ship requests whose IMEI/serial was ignored
    requests_per_seller: dict[str, int]  # token -> requests ("" when none was sent)
    rate_limited: dict[str, int]  # token -> 429 answers
    peak_requests_per_window: dict[str, int]  # token -> most requests in one sliding window

    @property
    def orders_shipped_twice(self) -> list[int]:
        """Orders with more than one shipping update: must stay empty."""
        return sorted(order for order, n in self.ships.items() if n > 1)

    @property
    def lines_patched_twice(self) -> list[int]:
        """Orderlines PATCHed more than once: must stay empty."""
        return sorted(line for line, n in self.imei_patches.items() if n > 1)

    def as_json(self) -> dict[str, Any]:
        """The stats as `GET /_sim/stats` returns them (JSON object keys are strings)."""
        return {
            name: value if isinstance(value, int) else {str(k): v for k, v in value.items()}
            for name, value in vars(self).items()
        } | {
            "orders_shipped_twice": self.orders_shipped_twice,
            "lines_patched_twice": self.lines_patched_twice,
        }
