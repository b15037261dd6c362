"""How the worker should treat a Back Market failure. Pure: no httpx, no clock of its own.

Back Market has no idempotency key and IMEIs are write-once, so "retry?" has three answers:
not at all (the request is wrong or the token is dead), after re-reading the order (a write may
have been applied), or simply later (nothing was applied).
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

from shopify_bm.backmarket.errors import (
    AuthenticationError,
    BackMarketConnectionError,
    BackMarketError,
    PermissionDeniedError,
    RateLimitedError,
    ServerError,
    UnexpectedResponseError,
)


def is_transient(error: BackMarketError) -> bool:
    """True when the same call may succeed later: network, timeouts, 5xx, 429, Cloudflare."""
    return isinstance(
        error, BackMarketConnectionError | ServerError | RateLimitedError | UnexpectedResponseError
    )


def is_ambiguous(error: BackMarketError) -> bool:
    """True when a write may have been applied anyway: re-read the order before retrying it.

    A timeout or broken connection after the request left, a 5xx, or a success answer we could
    not read. Refused connections and Cloudflare blocks never reached Back Market's application.
    """
    if isinstance(error, BackMarketConnectionError):
        return error.request_sent
    return isinstance(error, ServerError | UnexpectedResponseError)


def needs_merchant_action(error: BackMarketError) -> bool:
    """True when Back Market rejected the token: only the merchant can fix it, retrying won't."""
    return isinstance(error, AuthenticationError | PermissionDeniedError)


def retry_after(error: BackMarketError) -> float | None:
    """Seconds Back Market asked us to wait, if it did."""
    return error.retry_after if isinstance(error, RateLimitedError) else None


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """A `Retry-After` header (delay in seconds, or an HTTP-date) as seconds from `now`.

    None when absent or unreadable; never negative. `now` should be the response's own `Date`
    when it has one, so the server's clock is compared with the server's clock.
    """
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = parsedate_to_datetime(text)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)  # HTTP-dates are always GMT
        seconds = (when - now).total_seconds()
    if not math.isfinite(seconds):
        return None
    return max(seconds, 0.0)
