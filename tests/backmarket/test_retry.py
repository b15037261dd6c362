"""Which Back Market failures are retried, after a re-read, or handed to the merchant."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from shopify_bm.backmarket.errors import (
    AuthenticationError,
    BackMarketConnectionError,
    BackMarketError,
    BackMarketStatusError,
    BackMarketTimeoutError,
    BadRequestError,
    CloudflareBlockedError,
    ConflictError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitedError,
    ServerError,
    UnexpectedResponseError,
    UnprocessableEntityError,
)
from shopify_bm.backmarket.retry import (
    is_ambiguous,
    is_transient,
    needs_merchant_action,
    parse_retry_after,
    retry_after,
)


def status(error_class: type[BackMarketStatusError], code: int) -> BackMarketStatusError:
    return error_class("test", status_code=code, body_excerpt="")


CASES: list[tuple[BackMarketError, bool, bool, bool]] = [
    # error, transient, ambiguous, merchant action
    (BackMarketTimeoutError("t", request_sent=False), True, False, False),
    (BackMarketTimeoutError("t", request_sent=True), True, True, False),
    (BackMarketConnectionError("c", request_sent=False), True, False, False),
    (BackMarketConnectionError("c", request_sent=True), True, True, False),
    (status(ServerError, 500), True, True, False),
    (status(ServerError, 503), True, True, False),
    (RateLimitedError("r", status_code=429, body_excerpt="", retry_after=10), True, False, False),
    (status(CloudflareBlockedError, 403), True, False, False),
    (status(CloudflareBlockedError, 503), True, False, False),
    (
        UnexpectedResponseError("u", status_code=200, body_excerpt="", cf_ray=None),
        True,
        True,
        False,
    ),
    (status(BadRequestError, 400), False, False, False),
    (status(AuthenticationError, 401), False, False, True),
    (status(PermissionDeniedError, 403), False, False, True),
    (status(NotFoundError, 404), False, False, False),
    (status(ConflictError, 409), False, False, False),
    (status(UnprocessableEntityError, 422), False, False, False),
    (status(BackMarketStatusError, 418), False, False, False),
]


@pytest.mark.parametrize(("error", "transient", "ambiguous", "merchant"), CASES)
def test_each_failure_has_one_treatment(
    error: BackMarketError, transient: bool, ambiguous: bool, merchant: bool
) -> None:
    assert is_transient(error) is transient
    assert is_ambiguous(error) is ambiguous
    assert needs_merchant_action(error) is merchant
    assert not (transient and merchant)  # a dead token is never retried blindly


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (RateLimitedError("r", status_code=429, body_excerpt="", retry_after=12.5), 12.5),
        (CloudflareBlockedError("c", status_code=429, body_excerpt="", retry_after=10), 10),
        (RateLimitedError("r", status_code=429, body_excerpt=""), None),
        (status(ServerError, 503), None),
        (BackMarketTimeoutError("t", request_sent=True), None),
    ],
)
def test_retry_after_is_only_what_back_market_asked(
    error: BackMarketError, expected: float | None
) -> None:
    assert retry_after(error) == expected


NOW = datetime(2026, 3, 10, 15, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, None),
        ("", None),
        ("  ", None),
        ("10", 10.0),
        (" 120 ", 120.0),
        ("0", 0.0),
        ("1.5", 1.5),
        ("-5", 0.0),
        ("Tue, 10 Mar 2026 15:00:30 GMT", 30.0),
        ("Tue, 10 Mar 2026 14:59:00 GMT", 0.0),
        ("Tuesday, 10-Mar-26 15:01:00 GMT", 60.0),  # RFC 850, still allowed by HTTP
        ("Tue Mar 10 15:00:45 2026", 45.0),  # asctime, no zone: GMT
        ("soon", None),
        ("nan", None),
        ("inf", None),
    ],
)
def test_parse_retry_after(header: str | None, expected: float | None) -> None:
    assert parse_retry_after(header, NOW) == expected
