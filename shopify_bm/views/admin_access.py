"""Who may open the admin page and act on it.

- Inside the Shopify admin (any mode): App Bridge's session token, as `?id_token=` on the first
  document load and `Authorization: Bearer` on every fetch. The first load of a new shop
  exchanges that token for the shop's offline token: that is the install.
- Single-store mode opened outside Shopify: HTTP Basic with `SHOPIFY_BM_ADMIN_PASSWORD` (any
  user name). Without a password, only from this machine: a loopback client address, a loopback
  `Host` (no DNS rebinding) and no proxy headers (a reverse proxy would make every visitor local).

Writes are POSTs with a JSON body sent by the page's `fetch`: a cross-site form cannot send JSON
and a cross-site script cannot add our header without a CORS preflight, which is never granted;
inside Shopify they carry the session token, never a cookie.

`app.config[HTTP_CLIENT]` may hold an `httpx.Client` for calls to Shopify (tests point it at a
local fake).
"""

from __future__ import annotations

import hmac
import ipaddress
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import httpx
from flask import current_app, g, request
from shopify_app import RequestInput

from shopify_bm.models import utcnow
from shopify_bm.runtime import Runtime
from shopify_bm.shopify import auth

HTTP_CLIENT = "SHOPIFY_BM_SHOPIFY_HTTP_CLIENT"
REQUESTED_WITH = "shopify-bm"  # the X-Requested-With value the page's fetch sends
_PROXY_HEADERS = ("Forwarded", "X-Forwarded-For", "X-Forwarded-Host", "X-Real-IP")
_CHALLENGE = {"WWW-Authenticate": 'Basic realm="shopify-bm admin", charset="UTF-8"'}


class AdminAccessError(Exception):
    """The request may not see or change this page; `status` and `headers` are the answer."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.headers = status, message, headers or {}


@dataclass(frozen=True)
class Viewer:
    """Who is looking, at which shop."""

    shop: str
    actor: str  # recorded with every override
    embedded: bool
    document_headers: dict[str, str] = field(default_factory=dict)


def authenticate(*, write: bool = False) -> Viewer:
    """Authenticate the request (see the module docstring), or raise `AdminAccessError`."""
    settings = runtime_of_app().settings
    authorization = request.headers.get("Authorization", "")
    if authorization.startswith("Bearer ") or "id_token" in request.args:
        viewer = _embedded_viewer()
    elif settings.single_store and settings.admin_password and authorization:
        viewer = _password_viewer()
    elif "shop" in request.args and settings.shopify_api_key:
        viewer = _embedded_viewer()  # a document load from Shopify without its token: patch it
    elif settings.single_store and settings.admin_password:
        raise AdminAccessError(401, "password required", _CHALLENGE)
    elif settings.single_store:
        viewer = _local_viewer()
    else:
        raise AdminAccessError(403, "Open shopify-bm from your Shopify admin.")
    if write:
        if not request.is_json:
            raise AdminAccessError(415, "send the action as JSON (from the app's page)")
        if not viewer.embedded:
            _check_same_origin()
    g.admin_shop = viewer.shop
    return viewer


def _embedded_viewer() -> Viewer:
    runtime = runtime_of_app()
    app = auth.shopify_app(runtime.settings)
    session = auth.verify_session(app, request_input())
    single = runtime.settings.shopify_shop
    if single is not None and session.shop != single:
        raise AdminAccessError(403, f"This app serves {single} only.")
    g.admin_shop = session.shop
    auth.install_shop(
        runtime.db,
        app,
        session,
        runtime.settings,
        utcnow(),
        http_client=http_client(),
    )
    actor = f"Shopify user {session.user_id}" if session.user_id else "Shopify admin"
    return Viewer(session.shop, actor, embedded=True, document_headers=session.document_headers)


def _password_viewer() -> Viewer:
    settings = runtime_of_app().settings
    given = request.authorization
    expected = settings.admin_password.get_secret_value() if settings.admin_password else ""
    password = (given.password or "") if given is not None and given.type == "basic" else ""
    if not expected or not hmac.compare_digest(password.encode(), expected.encode()):
        raise AdminAccessError(401, "wrong password", _CHALLENGE)
    assert settings.shopify_shop is not None
    return Viewer(settings.shopify_shop, "admin (password)", embedded=False)


def _local_viewer() -> Viewer:
    settings = runtime_of_app().settings
    if not _from_this_machine():
        raise AdminAccessError(
            403,
            "Set SHOPIFY_BM_ADMIN_PASSWORD to open this page from another machine.",
        )
    assert settings.shopify_shop is not None
    return Viewer(settings.shopify_shop, "admin (this machine)", embedded=False)


def _from_this_machine() -> bool:
    if any(name in request.headers for name in _PROXY_HEADERS):
        return False
    host = urlsplit(f"//{request.host}").hostname or ""
    return _is_loopback(request.remote_addr or "") and (host == "localhost" or _is_loopback(host))


def _is_loopback(address: str) -> bool:
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


def _check_same_origin() -> None:
    """Password and local access ride on ambient credentials: refuse cross-site writes."""
    origin = request.headers.get("Origin")
    site = request.headers.get("Sec-Fetch-Site")
    if (
        request.headers.get("X-Requested-With") != REQUESTED_WITH
        or (origin is not None and origin != request.host_url.rstrip("/"))
        or (site is not None and site not in ("same-origin", "none"))
    ):
        raise AdminAccessError(403, "cross-site request refused")


def runtime_of_app() -> Runtime:
    """The app's runtime (settings and database)."""
    runtime: Runtime = current_app.extensions["shopify_bm"]
    return runtime


def http_client() -> httpx.Client | None:
    """The HTTP client for Shopify calls, when the app was given one."""
    client: httpx.Client | None = current_app.config.get(HTTP_CLIENT)
    return client


def request_input() -> RequestInput:
    """The current request as Shopify's package takes it."""
    return auth.request_input(request.method, request.url, dict(request.headers))
