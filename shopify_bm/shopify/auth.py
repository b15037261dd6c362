"""Embedded-app authentication: session tokens, install by token exchange, offline-token refresh.

Shopify's own package (`shopify_app`) verifies session tokens (HS256, `aud` = client id, 10 s
leeway, current or previous secret) and talks to the token endpoint; this module decides when,
and keeps the tokens, encrypted, on the `Shop` row. Managed installation means there is no OAuth
redirect: the first time a shop opens the app, its session token is exchanged for an expiring
offline token (an hour) and a refresh token; before each use a token about to expire is
refreshed, one process at a time per shop, and both new tokens are stored in one transaction.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import httpx
from shopify_app import (
    HttpLog,
    IdTokenDetails,
    RequestInput,
    Res,
    ShopifyApp,
    TokenExchangeAccessToken,
    TokenExchangeResult,
)
from sqlalchemy import select
from sqlalchemy.orm import Session

from shopify_bm.db import Database, dialect_insert
from shopify_bm.models import Shop
from shopify_bm.settings import Settings
from shopify_bm.shopify.errors import (
    ShopifyApiError,
    ShopifyThrottledError,
    ShopifyTokenError,
    ShopifyUnavailableError,
)

# Where App Bridge fetches a fresh session token for a document load that came without one.
PATCH_ID_TOKEN_PATH = "/auth/patch-id-token"  # noqa: S105 (a path, not a secret)
# Refresh a token this close to its expiry (the package refreshes inside the same 60 s).
REFRESH_MARGIN = timedelta(seconds=60)
HTTP_TIMEOUT = httpx.Timeout(10.0, connect=5.0)
_SHOP_DOMAIN = re.compile(r"^[a-z0-9][a-z0-9-]*\.myshopify\.com$")
_MYSHOPIFY = ".myshopify.com"


class AppNotConfiguredError(RuntimeError):
    """SHOPIFY_API_KEY and SHOPIFY_API_SECRET must be set to run the app inside Shopify."""


class SessionRejectedError(Exception):
    """The session token is missing, stale or not Shopify's.

    `response` is the answer App Bridge expects: 401 with `X-Shopify-Retry-Invalid-Session-Request:
    1` for a fetch (App Bridge retries with a fresh token), or a redirect to the patch-id-token page
    for a document load.
    """

    def __init__(self, code: str, response: Res) -> None:
        super().__init__(code)
        self.code = code
        self.response = response


@dataclass(frozen=True)
class VerifiedSession:
    """A request that carried a valid session token."""

    shop: str  # the myshopify domain, e.g. acme.myshopify.com
    user_id: str | None  # the staff member (the token's `sub`)
    id_token: IdTokenDetails
    invalid_token_response: Res | None  # what to answer if Shopify refuses the token exchange
    document_headers: dict[str, str]  # CSP and preload headers, for document requests


def shopify_app(settings: Settings) -> ShopifyApp:
    """The package's entry point, with the app's credentials (and the previous secret)."""
    secret = settings.shopify_api_secret.get_secret_value() if settings.shopify_api_secret else ""
    if not settings.shopify_api_key or not secret:
        raise AppNotConfiguredError(AppNotConfiguredError.__doc__)
    old = settings.shopify_api_secret_old
    return ShopifyApp(
        client_id=settings.shopify_api_key,
        client_secret=secret,
        old_client_secret=old.get_secret_value() if old else None,
    )


def is_shop_domain(value: str) -> bool:
    """True for a well-formed `{name}.myshopify.com` (the only hosts tokens may name)."""
    return bool(_SHOP_DOMAIN.fullmatch(value))


def shop_name(domain: str) -> str:
    """`acme` for `acme.myshopify.com`: the form the package's endpoints take."""
    if not is_shop_domain(domain):
        raise ValueError(f"not a myshopify domain: {domain!r}")
    return domain.removesuffix(_MYSHOPIFY)


def frame_ancestors(shop_domain: str | None) -> str:
    """The CSP that lets the shop's admin, and only it, frame the app."""
    if shop_domain and is_shop_domain(shop_domain):
        return f"frame-ancestors https://{shop_domain} https://admin.shopify.com;"
    return "frame-ancestors https://admin.shopify.com;"


def request_input(method: str, url: str, headers: Mapping[str, str]) -> RequestInput:
    """The package's view of an HTTP request (the body plays no part in session tokens)."""
    return {"method": method, "url": url, "headers": dict(headers), "body": ""}


def verify_session(app: ShopifyApp, request: RequestInput) -> VerifiedSession:
    """The shop and user of an App Home request, or `SessionRejectedError` with the answer."""
    result = app.verify_app_home_req(request, app_home_patch_id_token_path=PATCH_ID_TOKEN_PATH)
    if not result.ok or result.id_token is None or not result.shop:
        raise SessionRejectedError(result.log.code, result.response)
    claims = result.id_token.claims
    dest = urlsplit(str(claims.get("dest", ""))).hostname or ""
    issuer = urlsplit(str(claims.get("iss", ""))).hostname or ""
    if not is_shop_domain(dest) or issuer != dest:
        # Signed with our secret, yet naming two shops (or none): never act on it.
        raise SessionRejectedError("invalid_shop_claims", Res(status=401, body="", headers={}))
    return VerifiedSession(
        shop=dest,
        user_id=result.user_id,
        id_token=result.id_token,
        invalid_token_response=result.invalid_token_response,
        document_headers=dict(result.response.headers),
    )


def patch_id_token_page(app: ShopifyApp, request: RequestInput) -> Res:
    """The tiny page where App Bridge gets a session token, then reloads the page asked for."""
    return app.app_home_patch_id_token(request).response


def install_shop(
    db: Database,
    app: ShopifyApp,
    session: VerifiedSession,
    settings: Settings,
    now: datetime,
    *,
    http_client: httpx.Client | None = None,
) -> bool:
    """Give the shop a usable offline token, exchanging the session token when it has none.

    That is the install (a new `Shop` row) or a reinstall; otherwise nothing happens. Returns
    whether an exchange took place. Concurrent first loads exchange once: the row is locked.
    """
    with db.transaction() as s:
        shop = _shop(s, session.shop)
        if shop is not None and shop.installed and _refreshable(shop, now):
            return False
    with db.transaction() as s, open_client(http_client) as client:
        s.execute(
            dialect_insert(s, Shop.__table__)
            .values(
                domain=session.shop,
                installed=False,
                backmarket_url=settings.backmarket_base_url,
                backmarket_locale=settings.backmarket_locale,
            )
            .on_conflict_do_nothing(index_elements=["domain"])
        )
        shop = _shop(s, session.shop, lock=True)
        assert shop is not None  # inserted above, or already there
        if shop.installed and _refreshable(shop, now):
            return False  # another request installed it while this one waited for the lock
        result = app.exchange_using_token_exchange(
            "offline",
            id_token=session.id_token,
            invalid_token_response=session.invalid_token_response,
            expiring=True,
            http_client=client,
        )
        if not result.ok or result.access_token is None:
            raise _exchange_error(result)
        _store(shop, result.access_token)
        shop.installed = True
    return True


def access_token_for(
    db: Database,
    app: ShopifyApp,
    shop_domain: str,
    now: datetime,
    *,
    http_client: httpx.Client | None = None,
) -> str:
    """The shop's offline access token, refreshed first when it is about to expire.

    Refreshes are serialised per shop (the row is locked: `FOR UPDATE` on PostgreSQL, the write
    lock on SQLite), because each refresh rotates the refresh token and a second concurrent one
    would be refused. Raises `ShopifyTokenError` when the merchant must reopen the app, and a
    transient error when Shopify could not be reached.
    """
    with db.transaction() as s:
        shop = _shop(s, shop_domain)
        token = _fresh_token(shop, shop_domain, now)
        if token is not None:
            return token
    with db.transaction() as s, open_client(http_client) as client:
        shop = _shop(s, shop_domain, lock=True)
        token = _fresh_token(shop, shop_domain, now)
        if token is not None:
            return token  # refreshed by another process meanwhile
        assert shop is not None  # _fresh_token raises for a missing shop
        outcome = _refresh(app, shop, client)
    # Committed: new tokens stored, or dead ones forgotten.
    if isinstance(outcome, ShopifyTokenError):
        raise outcome
    return outcome


def _refresh(app: ShopifyApp, shop: Shop, client: httpx.Client) -> str | ShopifyTokenError:
    """Refresh the locked row's token: the new token, or the error to raise after commit."""
    assert shop.access_token is not None
    result = app.refresh_token_exchanged_access_token(_package_token(shop), http_client=client)
    if result.ok:
        if result.access_token is None:
            return shop.access_token  # the package found it still valid
        _store(shop, result.access_token)
        return result.access_token.token
    if result.log.code not in ("invalid_grant", "refresh_token_expired"):
        raise _refresh_error(result, shop.domain)
    # The refresh token is dead: forget both, so the next App Home load exchanges anew.
    shop.access_token = shop.refresh_token = None
    shop.access_token_expires_at = shop.refresh_token_expires_at = None
    return ShopifyTokenError(
        f"Shopify no longer accepts the refresh token of {shop.domain}: "
        "open the app from the store's Shopify admin to reconnect it",
        code=result.log.code,
    )


def _shop(session: Session, domain: str, *, lock: bool = False) -> Shop | None:
    query = select(Shop).where(Shop.domain == domain)
    if lock:
        query = query.with_for_update()
    return session.execute(query).scalar_one_or_none()


def _fresh_token(shop: Shop | None, domain: str, now: datetime) -> str | None:
    """The access token if it can be used as is; None if it needs a refresh first."""
    if shop is None or not shop.installed or not shop.access_token:
        raise ShopifyTokenError(
            f"no Shopify access token for {domain}: open the app from the store's Shopify admin",
            code="no_token",
        )
    expires = shop.access_token_expires_at
    if expires is None or expires > now + REFRESH_MARGIN:
        return shop.access_token  # expires None: a non-expiring token (single-store mode)
    if not shop.refresh_token:
        raise ShopifyTokenError(
            f"the Shopify access token of {domain} expired and cannot be refreshed: "
            "open the app from the store's Shopify admin",
            code="expired_without_refresh_token",
        )
    return None


def _refreshable(shop: Shop, now: datetime) -> bool:
    """A token we can use now, or refresh into one, without the merchant."""
    if not shop.access_token:
        return False
    expires = shop.access_token_expires_at
    if expires is None or expires > now + REFRESH_MARGIN:
        return True
    refresh_expires = shop.refresh_token_expires_at
    return bool(shop.refresh_token) and (refresh_expires is None or refresh_expires > now)


def _store(shop: Shop, token: TokenExchangeAccessToken) -> None:
    """Both tokens and their expiries, together (the caller's transaction makes it atomic)."""
    shop.access_token = token.token
    shop.access_token_expires_at = _parse_time(token.expires)
    shop.refresh_token = token.refresh_token or None
    shop.refresh_token_expires_at = (
        _parse_time(token.refresh_token_expires) if token.refresh_token else None
    )
    if token.scope:
        shop.scope = token.scope[:1000]


def _package_token(shop: Shop) -> TokenExchangeAccessToken:
    assert shop.access_token is not None
    return TokenExchangeAccessToken(
        shop=shop_name(shop.domain),
        token=shop.access_token,
        expires=_format_time(shop.access_token_expires_at),
        scope=shop.scope or "",
        access_mode="offline",
        refresh_token=shop.refresh_token,
        refresh_token_expires=_format_time(shop.refresh_token_expires_at),
        user=None,
    )


def _exchange_error(result: TokenExchangeResult) -> Exception:
    code = result.log.code
    if code == "invalid_subject_token":
        return SessionRejectedError(code, result.response)
    return _transport_error(result.http_logs, code) or ShopifyApiError(
        f"Shopify refused the token exchange ({code})", code=code
    )


def _refresh_error(result: TokenExchangeResult, domain: str) -> ShopifyApiError:
    code = result.log.code
    transient = _transport_error(result.http_logs, code)
    if transient is not None:
        return transient
    return ShopifyTokenError(
        f"could not refresh the Shopify access token of {domain} ({code}): "
        "open the app from the store's Shopify admin",
        code=code,
    )


def _transport_error(logs: list[HttpLog], code: str) -> ShopifyApiError | None:
    """Network failures, 429 and 5xx from the token endpoint: worth trying again later."""
    status = logs[-1].res.status if logs else 0
    if code in ("network_error", "server_error") or status >= 500:
        return ShopifyUnavailableError(
            f"Shopify's token endpoint is unavailable ({code})", code=code
        )
    if code == "rate_limit_exceeded" or status == 429:
        return ShopifyThrottledError("Shopify's token endpoint is rate limited", code=code)
    return None


@contextmanager
def open_client(given: httpx.Client | None) -> Iterator[httpx.Client]:
    """The injected client (tests point it at a local fake), else one with explicit timeouts."""
    if given is not None:
        yield given
        return
    with httpx.Client(timeout=HTTP_TIMEOUT) as client:
        yield client


def _parse_time(value: str | None) -> datetime | None:
    if not value:
        return None
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def _format_time(value: datetime | None) -> str | None:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if value else None
