"""What can go wrong when talking to Back Market, one class per meaning.

Callers write `except RateLimitedError`, never `if status == 429`. Every message is meant to be
read by a merchant and never contains the API token. No httpx here: `retry` builds on these
classes and stays pure.
"""

from __future__ import annotations

from typing import ClassVar


class BackMarketError(Exception):
    """A call to Back Market failed; the message says how, in plain words."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class BackMarketConnectionError(BackMarketError):
    """Back Market could not be reached, or the connection broke before its answer arrived."""

    def __init__(self, message: str, *, request_sent: bool) -> None:
        super().__init__(message)
        # False only when the request certainly never left (connect failed): nothing was applied.
        self.request_sent = request_sent


class BackMarketTimeoutError(BackMarketConnectionError):
    """Back Market did not answer in time."""


class UnexpectedResponseError(BackMarketError):
    """Back Market answered with success, but not with the JSON this client expects."""

    def __init__(
        self, message: str, *, status_code: int, body_excerpt: str, cf_ray: str | None
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.body_excerpt = body_excerpt
        self.cf_ray = cf_ray


class BackMarketStatusError(BackMarketError):
    """Back Market answered with an HTTP status this client has no narrower class for."""

    # What happened, then what to do, in a merchant's words; the client adds status and details.
    summary: ClassVar[str] = "Back Market answered with an unexpected HTTP status"
    advice: ClassVar[str] = ""

    def __init__(
        self,
        message: str,
        *,
        status_code: int,
        body_excerpt: str,
        request_id: str | None = None,
        cf_ray: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.body_excerpt = body_excerpt  # at most 300 characters, token redacted
        self.request_id = request_id  # `requestId` of Back Market's error envelope
        self.cf_ray = cf_ray  # Cloudflare's id of the request: what Back Market support asks for


class BadRequestError(BackMarketStatusError):
    """400: Back Market refused the request as invalid (e.g. `sku not found`); do not resend."""

    summary = "Back Market refused the request as invalid"


class AuthenticationError(BackMarketStatusError):
    """401: the API token is wrong, expired or deleted; the merchant must create a new one."""

    summary = "Back Market rejected the API token"
    advice = (
        "Create a new token in the Back Market Back Office (Options > Integrations) and save it "
        "in the app settings."
    )


class PermissionDeniedError(BackMarketStatusError):
    """403 with Back Market's JSON: this token may not do this (wrong account or platform)."""

    summary = "Back Market refused access with this API token"
    advice = (
        "Check that the token belongs to this seller account and to this Back Market platform "
        "(EU, US or AP), or create a new one in the Back Office."
    )


class NotFoundError(BackMarketStatusError):
    """404: Back Market does not know this order or orderline (or not for this seller)."""

    summary = "Back Market does not know this order or order line for this seller"


class ConflictError(BackMarketStatusError):
    """409: the change conflicts with the order's current state on Back Market."""

    summary = "Back Market refused the change because it conflicts with the order's current state"


class UnprocessableEntityError(BackMarketStatusError):
    """422: Back Market refused a value, e.g. an invalid IMEI or one already registered."""

    summary = "Back Market refused a value that was sent"


class RateLimitedError(BackMarketStatusError):
    """429: too many requests; Back Market blocks the client for a while (about 10 s)."""

    summary = "Back Market is limiting requests because too many were sent too fast"
    advice = "Try again in a few minutes."

    def __init__(
        self,
        message: str,
        *,
        status_code: int,
        body_excerpt: str,
        request_id: str | None = None,
        cf_ray: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(
            message,
            status_code=status_code,
            body_excerpt=body_excerpt,
            request_id=request_id,
            cf_ray=cf_ray,
        )
        self.retry_after = retry_after  # seconds to wait, when Back Market said so


class CloudflareBlockedError(RateLimitedError):
    """Cloudflare, in front of Back Market, blocked the request (WAF, bot check or throttling).

    The request never reached Back Market. It is not about the token: try again later, and give
    `cf_ray` to Back Market support if it keeps happening.
    """

    summary = "Back Market's firewall (Cloudflare) blocked the request"
    advice = (
        "This is not about the token; try again in a few minutes. If it keeps happening, give "
        "Back Market support the cf-ray."
    )


class ServerError(BackMarketStatusError):
    """5xx: Back Market failed; a write may or may not have been applied."""

    summary = "Back Market had an internal error"
    advice = "A change sent may or may not have been applied; read the order again before retrying."
