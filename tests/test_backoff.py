"""When a failed export runs again: capped exponential backoff, Retry-After, and giving up."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from shopify_bm.backoff import (
    CAP_SECONDS,
    GIVE_UP_AFTER,
    backoff_seconds,
    next_attempt_at,
    should_give_up,
)

NOW = datetime(2026, 3, 10, 15, 0, tzinfo=UTC)


class FixedRandom(random.Random):
    """A generator whose `random()` always returns one value, to reach the bounds exactly."""

    def __init__(self, value: float) -> None:
        super().__init__(0)
        self.value = value

    def random(self) -> float:
        return self.value


@pytest.mark.parametrize(
    ("attempts", "low", "high"),
    [
        (0, 2.5, 5.0),
        (1, 2.5, 5.0),
        (2, 5.0, 10.0),
        (3, 10.0, 20.0),
        (4, 20.0, 40.0),
        (8, 320.0, 640.0),
        (9, 450.0, 900.0),  # 1280 s capped at 15 minutes
        (10, 450.0, 900.0),
        (1_000, 450.0, 900.0),
        (10**9, 450.0, 900.0),  # no overflow however long it has failed
    ],
)
def test_backoff_bounds(attempts: int, low: float, high: float) -> None:
    rng = random.Random(attempts)
    delays = [backoff_seconds(attempts, rng=rng) for _ in range(200)]

    assert all(low <= d < high for d in delays)
    assert backoff_seconds(attempts, rng=FixedRandom(0.0)) == low
    assert backoff_seconds(attempts, rng=FixedRandom(0.999999)) == pytest.approx(high, rel=1e-5)
    assert len(set(delays)) > 100  # jittered: jobs that failed together come back apart


def test_backoff_is_reproducible_with_a_seed_and_never_exceeds_the_cap() -> None:
    first = [backoff_seconds(n, rng=random.Random(7)) for n in range(1, 30)]
    again = [backoff_seconds(n, rng=random.Random(7)) for n in range(1, 30)]

    assert first == again
    assert max(first) <= CAP_SECONDS
    assert 2.5 <= backoff_seconds(1) < 5.0  # the module's own generator by default


@pytest.mark.parametrize(
    ("retry_after", "expected"),
    [
        pytest.param(30.0, timedelta(seconds=30), id="honoured"),
        pytest.param(0.0, timedelta(0), id="now"),
        pytest.param(0.5, timedelta(seconds=0.5), id="fractional"),
        pytest.param(899.0, timedelta(seconds=899), id="just-under-cap"),
        pytest.param(3_600.0, timedelta(seconds=CAP_SECONDS), id="capped"),
        pytest.param(float("inf"), timedelta(seconds=CAP_SECONDS), id="infinite-capped"),
    ],
)
def test_retry_after_is_honoured_and_capped(retry_after: float, expected: timedelta) -> None:
    # A high attempt count: the backoff would say minutes, Back Market's word wins.
    at = next_attempt_at(9, NOW, retry_after=retry_after, rng=FixedRandom(0.0))

    assert at - NOW == expected


@pytest.mark.parametrize(
    "retry_after",
    [pytest.param(None, id="absent"), pytest.param(-1.0, id="negative"), float("nan")],
)
def test_without_a_usable_retry_after_the_backoff_decides(retry_after: float | None) -> None:
    at = next_attempt_at(3, NOW, retry_after=retry_after, rng=FixedRandom(0.0))

    assert at - NOW == timedelta(seconds=10)


def test_next_attempt_keeps_the_time_zone() -> None:
    at = next_attempt_at(1, NOW, rng=random.Random(1))

    assert at.tzinfo is not None
    assert timedelta(seconds=2.5) <= at - NOW < timedelta(seconds=5)


@pytest.mark.parametrize(
    ("failing_for", "give_up"),
    [
        pytest.param(None, False, id="not-failing"),
        pytest.param(timedelta(0), False, id="just-started"),
        pytest.param(timedelta(hours=47, minutes=59), False, id="under-48h"),
        pytest.param(GIVE_UP_AFTER, False, id="exactly-48h"),
        pytest.param(GIVE_UP_AFTER + timedelta(seconds=1), True, id="over-48h"),
        pytest.param(timedelta(days=30), True, id="long-over"),
    ],
)
def test_give_up_window(failing_for: timedelta | None, give_up: bool) -> None:
    since = None if failing_for is None else NOW - failing_for

    assert should_give_up(since, NOW) is give_up
