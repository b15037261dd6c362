"""When to try a failed export again. Pure: takes `now`, returns a time."""

from __future__ import annotations

import random
from datetime import datetime, timedelta

BASE_SECONDS = 5.0
CAP_SECONDS = 15 * 60.0
# Past this much time failing, a transient error becomes a failure a person must see.
GIVE_UP_AFTER = timedelta(hours=48)


def backoff_seconds(attempts: int, *, rng: random.Random | None = None) -> float:
    """Capped exponential backoff with full jitter above half: 5 s, 10 s, 20 s … 15 min.

    `attempts` counts failures so far (1 after the first). Jitter spreads many jobs that failed
    together (a Back Market outage) so they do not all return at the same second.
    """
    exponent = max(attempts - 1, 0)
    ceiling = min(CAP_SECONDS, BASE_SECONDS * 2.0 ** min(exponent, 32))
    return ceiling / 2 + (rng or random).random() * ceiling / 2


def next_attempt_at(
    attempts: int,
    now: datetime,
    *,
    retry_after: float | None = None,
    rng: random.Random | None = None,
) -> datetime:
    """The next run time: Back Market's Retry-After when it gave one, else the backoff."""
    if retry_after is not None and retry_after >= 0:
        return now + timedelta(seconds=min(retry_after, CAP_SECONDS))
    return now + timedelta(seconds=backoff_seconds(attempts, rng=rng))


def should_give_up(failing_since: datetime | None, now: datetime) -> bool:
    """True when transient failures have lasted longer than anyone should wait unaware."""
    return failing_since is not None and now - failing_since > GIVE_UP_AFTER
