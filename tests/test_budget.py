"""The per-shop Back Market request budget (GCRA), pure and in the database."""

from __future__ import annotations

import bisect

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import select

from shopify_bm.budget import (
    BACKMARKET_LIMIT,
    BACKMARKET_WINDOW,
    RequestBudget,
    advance,
    reserve_request,
)
from shopify_bm.models import Shop
from shopify_bm.runtime import Runtime


def send_times(arrivals: list[float], budget: RequestBudget) -> list[float]:
    """When each request really leaves, given when callers asked (in order)."""
    tat, sent = 0.0, []
    for now in arrivals:
        tat, wait = advance(tat, now, budget)
        sent.append(now + wait)
    return sent


def busiest_window(times: list[float], window: float) -> int:
    ordered = sorted(times)
    return max(bisect.bisect_left(ordered, t + window) - i for i, t in enumerate(ordered))


def test_defaults_stay_under_back_markets_limit_with_margin() -> None:
    budget = RequestBudget()
    assert budget.max_per_window() <= BACKMARKET_LIMIT
    assert budget.rate * BACKMARKET_WINDOW >= 0.9 * BACKMARKET_LIMIT  # 90-100% of the limit


def test_a_flood_is_spread_at_the_steady_rate() -> None:
    budget = RequestBudget()
    sent = send_times([0.0] * 1000, budget)

    assert busiest_window(sent, BACKMARKET_WINDOW) <= BACKMARKET_LIMIT
    assert sent[-1] == pytest.approx((1000 - budget.burst - 1) * budget.interval, rel=0.01)


@given(st.lists(st.floats(min_value=0, max_value=60, allow_nan=False), min_size=1, max_size=600))
def test_no_ten_second_window_ever_exceeds_the_limit(arrivals: list[float]) -> None:
    sent = send_times(sorted(arrivals), RequestBudget())

    assert busiest_window(sent, BACKMARKET_WINDOW) <= BACKMARKET_LIMIT
    assert all(s >= a for s, a in zip(sent, sorted(arrivals), strict=True))


def test_idle_shop_sends_at_once() -> None:
    assert advance(0.0, 100.0, RequestBudget())[1] == 0.0


def test_database_reservations_follow_the_same_rule(runtime: Runtime) -> None:
    budget = RequestBudget(rate=10, burst=2)
    with runtime.db.transaction() as session:
        shop_id = session.execute(select(Shop.id)).scalar_one()
    waits = []
    for _ in range(6):
        with runtime.db.transaction() as session:
            waits.append(reserve_request(session, shop_id, 1000.0, budget))

    expected, tat = [], 0.0
    for _ in range(6):
        tat, wait = advance(tat, 1000.0, budget)
        expected.append(wait)
    assert waits == pytest.approx(expected)
    assert waits[:3] == [0.0, 0.0, 0.0]
    assert waits[3] == pytest.approx(0.1)
