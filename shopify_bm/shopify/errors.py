"""What can go wrong when the app talks to Shopify, as types callers can tell apart.

`transient` says whether the same call may succeed later (queue a retry) or a person must act
first (reopen the app, grant a scope). Messages never contain tokens.
"""

from __future__ import annotations


class ShopifyApiError(Exception):
    """Shopify refused or could not answer the call."""

    transient = False

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


class ShopifyTokenError(ShopifyApiError):
    """The shop's access token is missing, revoked or cannot be refreshed: the merchant must open
    the app in the Shopify admin (which exchanges a new token), or reinstall it."""


class ShopifyAccessDeniedError(ShopifyApiError):
    """The token works but lacks a scope or protected-data approval for this query."""


class ShopifyThrottledError(ShopifyApiError):
    """Shopify's rate limit (HTTP 429 or a THROTTLED GraphQL error): try again after a pause."""

    transient = True

    def __init__(
        self, message: str, *, code: str | None = None, retry_after: float | None = None
    ) -> None:
        super().__init__(message, code=code)
        self.retry_after = retry_after


class ShopifyUnavailableError(ShopifyApiError):
    """Shopify did not answer usefully (network error, timeout, 5xx, shop frozen or locked)."""

    transient = True


class ShopifyQueryError(ShopifyApiError):
    """Shopify rejected the query itself (HTTP 400 or GraphQL errors): retrying will not help."""


class ShopifyOrderNotFoundError(ShopifyApiError):
    """The shop has no order with that id (deleted, or another shop's)."""
