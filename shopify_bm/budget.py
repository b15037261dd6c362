"""Each shop's Back Market request budget, shared by every worker process through the database.

Back Market (Cloudflare) blocks a token for 10 s once it sends more than 200 requests in 10 s.
Each shop spends its budget with a generic cell rate algorithm (GCRA): the shop row holds a
"theoretical arrival time" (TAT); one atomic UPDATE per request pushes it one interval forward and
says how long the caller must wait. In any window of W seconds a shop sends at most
`burst + W / interval` requests, which the defaults keep at 95% of Back Market's limit. Claiming
skips shops whose budget is spent, so a busy shop never holds threads that others could use.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import ColumnElement, case, func
from sqlalchemy.orm import Session

from shopify_bm.db import dialect_insert
from shopify_bm.models import ShopBudget

BACKMARKET_LIMIT = 200  # requests per window, per token (reference §6)
BACKMARKET_WINDOW = 10.0  # seconds


@dataclass(frozen=True)
class RequestBudget:
    """How fast one shop may call Back Market."""

    rate: float = 0.93 * BACKMARKET_LIMIT / BACKMARKET_WINDOW  # requests/s in steady state
    burst: float = 5.0  # requests allowed at once on top of the rate

    @property
    def interval(self) -> float:
        """Seconds between two requests at the steady rate."""
        return 1.0 / self.rate

    @property
    def tolerance(self) -> float:
        """How far the TAT may run ahead of now before a request has to wait."""
        return self.burst * self.interval

    def max_per_window(self, window: float = BACKMARKET_WINDOW) -> float:
        """The most requests any window of `window` seconds can see."""
        return self.burst + 1 + window * self.rate


def advance(tat: float, now: float, budget: RequestBudget) -> tuple[float, float]:
    """GCRA step (pure): the new TAT and the wait before this request may be sent."""
    new_tat = max(tat, now) + budget.interval
    return new_tat, max(0.0, new_tat - budget.tolerance - budget.interval - now)


def reserve_request(session: Session, shop_id: int, now: float, budget: RequestBudget) -> float:
    """Take one request from the shop's budget; returns the seconds to wait before sending it.

    Always succeeds: a caller that must wait has already taken its place in line, so callers in
    other processes queue behind it instead of racing it. One statement: an upsert, so a shop's
    first request creates its row.
    """
    table = ShopBudget.__table__
    insert = dialect_insert(session, table).values(
        shop_id=shop_id, request_tat=now + budget.interval
    )
    tat = table.c.request_tat
    new_tat = session.execute(
        insert.on_conflict_do_update(
            index_elements=[table.c.shop_id],
            set_={"request_tat": case((tat > now, tat), else_=now) + budget.interval},
        ).returning(table.c.request_tat)
    ).scalar_one()
    return max(0.0, float(new_tat) - budget.tolerance - budget.interval - now)


def restart_budget(session: Session, shop_id: int, at: float) -> None:
    """After Back Market blocked the shop: its budget starts again when the block ends."""
    table = ShopBudget.__table__
    insert = dialect_insert(session, table).values(shop_id=shop_id, request_tat=at)
    session.execute(
        insert.on_conflict_do_update(
            index_elements=[table.c.shop_id], set_={"request_tat": insert.excluded.request_tat}
        )
    )


def budget_tat() -> ColumnElement[float]:
    """The shop's TAT for the claim query (which outer-joins budgets): 0 for a fresh shop."""
    return func.coalesce(ShopBudget.request_tat, 0.0)


def has_budget_condition(now: float, budget: RequestBudget) -> ColumnElement[bool]:
    """SQL condition: the shop can send a request now without waiting (for the claim query)."""
    return budget_tat() <= now + budget.tolerance
