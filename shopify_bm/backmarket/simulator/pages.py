"""`GET /ws/orders` query parameters and pagination, with Back Market's quirks (reference §3.1)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from shopify_bm.backmarket.simulator.orders import Order
from shopify_bm.backmarket.simulator.rules import ApiError

DEFAULT_PAGE_SIZE = 10
MAX_PAGE_SIZE = 50
# "Retrieves all the orders that are neither in state=0 (New Order) nor state=8 (Order not paid)."
HIDDEN_ORDER_STATES = frozenset({0, 8})


@dataclass(frozen=True)
class OrderQuery:
    """A parsed list query; the date filters are lower bounds."""

    page: int = 1
    page_size: int = DEFAULT_PAGE_SIZE
    state: int | None = None
    country_code: str | None = None
    created_since: datetime | None = None
    modified_since: datetime | None = None

    def matches(self, order: Order) -> bool:
        """True when the order belongs in the list."""
        return (
            order.state not in HIDDEN_ORDER_STATES
            and (self.state is None or order.state == self.state)
            and (self.country_code is None or order.country_code == self.country_code)
            and (self.created_since is None or order.date_creation >= self.created_since)
            and (self.modified_since is None or order.date_modification >= self.modified_since)
        )


@dataclass(frozen=True)
class OrderPage:
    """One page of matching orders, and whether a next page exists."""

    count: int
    orders: Sequence[Order]
    has_next: bool


def parse_query(args: Mapping[str, str]) -> OrderQuery:
    """Read the list parameters; only `page-size` sets the size (`page_size` is ignored)."""
    try:
        page = int(args.get("page", "1"))
    except ValueError:
        page = 0
    if page < 1:
        raise ApiError(404, "Invalid page.")
    return OrderQuery(
        page=page,
        page_size=_page_size(args.get("page-size")),
        state=_state(args.get("state")),
        country_code=args.get("country_code") or None,
        created_since=_moment(args, "date_creation"),
        modified_since=_moment(args, "date_modification"),
    )


def paginate(orders: Sequence[Order], query: OrderQuery) -> OrderPage:
    """Cut one page out of the matching orders; a page past the last one is a 404."""
    matching = [order for order in orders if query.matches(order)]
    start = (query.page - 1) * query.page_size
    if start and start >= len(matching):
        raise ApiError(404, "Invalid page.")
    page = matching[start : start + query.page_size]
    return OrderPage(len(matching), page, start + len(page) < len(matching))


def _page_size(raw: str | None) -> int:
    # Like Django REST framework: a bad size falls back to the default, a big one is capped.
    try:
        size = int(raw) if raw is not None else DEFAULT_PAGE_SIZE
    except ValueError:
        return DEFAULT_PAGE_SIZE
    return DEFAULT_PAGE_SIZE if size < 1 else min(size, MAX_PAGE_SIZE)


def _state(raw: str | None) -> int | None:
    if raw is None or raw == "":
        return None
    try:
        return int(raw)
    except ValueError:
        raise ApiError(400, f"state: {raw!r} is not an order state") from None


def _moment(args: Mapping[str, str], name: str) -> datetime | None:
    raw = args.get(name)
    if not raw:
        return None
    try:
        moment = datetime.fromisoformat(raw)
    except ValueError:
        raise ApiError(400, f"{name}: {raw!r} is not a date-time") from None
    # Back Market accepts `YYYY-MM-DD HH:MM:SS` too; without an offset it is taken as UTC.
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
