"""The merchant's page: every blocked or failed export with its reason, and the ways out.

Routes: `GET /` (the page, also the app's home in Shopify), `GET /auth/patch-id-token`,
`POST /admin/exports/<order id>/retry|ship-without-imei|allow-reused-imei` and
`POST /admin/settings`. Who may use them is decided in `admin_access`.
"""

from __future__ import annotations

import logging
from urllib.parse import urlsplit

from flask import (
    Blueprint,
    Response,
    abort,
    g,
    jsonify,
    make_response,
    render_template,
    request,
    url_for,
)
from pydantic import ValidationError
from shopify_app import Res
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from shopify_bm.ingestion import NOTIFY_CHANNEL
from shopify_bm.models import ExportStatus, Shop, utcnow
from shopify_bm.operations import (
    AmbiguousExportError,
    ExportAlreadyDoneError,
    ExportNotFoundError,
    list_exports,
    retry_export,
)
from shopify_bm.runtime import Runtime
from shopify_bm.shopify import auth
from shopify_bm.shopify.errors import ShopifyApiError
from shopify_bm.views import admin_page
from shopify_bm.views.admin_access import (
    AdminAccessError,
    authenticate,
    request_input,
    runtime_of_app,
)
from shopify_bm.views.admin_settings import SettingsInput, allowed_urls, apply_settings

bp = Blueprint("admin", __name__)
log = logging.getLogger(__name__)

ACTIONS: dict[str, dict[str, bool]] = {
    "retry": {},
    "ship-without-imei": {"ship_without_imei": True},
    "allow-reused-imei": {"allow_reused_imeis": True},
}


@bp.get("/")
def index() -> Response:
    """The page: exports that need the merchant first, then those under way, then recent ones."""
    viewer = authenticate()
    runtime = runtime_of_app()
    with runtime.db.transaction() as session:
        shop = _shop(session, viewer.shop)
        attention = list_exports(session, admin_page.ATTENTION, shop=shop.domain)
        waiting = list_exports(session, admin_page.WAITING, shop=shop.domain, limit=50)
        exported = list_exports(session, [ExportStatus.EXPORTED], shop=shop.domain, limit=20)
        settings = _settings_form(shop, runtime)
    page = admin_page.AdminPage(
        shop=viewer.shop,
        embedded=viewer.embedded,
        api_key=runtime.settings.shopify_api_key or "",
        attention=admin_page.rows(attention, _action_url),
        waiting=admin_page.rows(waiting, _action_url),
        exported=admin_page.rows(exported, _action_url),
        settings=settings,
    )
    response = make_response(
        render_template("admin/index.html", page=page, embedded=page.embedded, api_key=page.api_key)
    )
    response.headers.update(viewer.document_headers)
    return response


@bp.get(auth.PATCH_ID_TOKEN_PATH)
def patch_id_token() -> Response:
    """Where App Bridge gets a fresh session token for a document load that came without one."""
    if not auth.is_shop_domain(request.args.get("shop", "")):
        raise AdminAccessError(400, "Open shopify-bm from your Shopify admin.")
    app = auth.shopify_app(runtime_of_app().settings)
    return _res(auth.patch_id_token_page(app, request_input()))


@bp.post("/admin/exports/<int:shopify_order_id>/<action>")
def export_action(shopify_order_id: int, action: str) -> Response:
    """Queue the export again now, optionally with a recorded override."""
    viewer = authenticate(write=True)
    overrides = ACTIONS.get(action)
    if overrides is None:
        abort(404)
    runtime = runtime_of_app()
    with runtime.db.transaction() as session:
        ref, now = str(shopify_order_id), utcnow()
        view = retry_export(session, ref, now, shop=viewer.shop, actor=viewer.actor, **overrides)
        if session.get_bind().dialect.name == "postgresql":
            # Wake LISTENing workers in other processes at commit (as webhook ingestion does).
            session.execute(text("SELECT pg_notify(:channel, '')"), {"channel": NOTIFY_CHANNEL})
    runtime.waker.notify()
    done = {"retry": "queued again", "ship-without-imei": "will ship without IMEI"}
    message = f"{view.order}: {done.get(action, 'IMEI reuse allowed, queued again')}"
    return jsonify(order=view.order, status=view.status, message=message)


@bp.post("/admin/settings")
def save_settings() -> Response:
    """Store the shop's Back Market settings; the token is write-only."""
    viewer = authenticate(write=True)
    runtime = runtime_of_app()
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        raise AdminAccessError(400, "expected a JSON object")
    form = SettingsInput.model_validate(data)  # ValidationError: 400, see _invalid_settings
    with runtime.db.transaction() as session:
        shop = _shop(session, viewer.shop, lock=True)
        if form.backmarket_url and form.backmarket_url not in allowed_urls(shop):
            raise AdminAccessError(400, "Choose one of Back Market's platforms.")
        apply_settings(shop, form)
    return jsonify(message="Settings saved. Retry the exports they unblock.")


def _shop(session: Session, domain: str, *, lock: bool = False) -> Shop:
    query = select(Shop).where(Shop.domain == domain)
    shop = session.execute(query.with_for_update() if lock else query).scalar_one_or_none()
    if shop is None:
        raise AdminAccessError(404, f"{domain} is not installed.")
    return shop


def _settings_form(shop: Shop, runtime: Runtime) -> admin_page.SettingsForm:
    return admin_page.SettingsForm(
        url=url_for("admin.save_settings"),
        token_state="set" if shop.backmarket_token else "not set",
        contact_email=shop.backmarket_contact_email or "",
        company=shop.backmarket_company or "",
        ship_without_imei=shop.ship_without_imei,
        exempt_skus=", ".join(str(s) for s in shop.exempt_skus or ()),
        platforms=admin_page.platform_choices(shop.backmarket_url),
        from_environment=runtime.settings.single_store,
    )


def _action_url(shopify_order_id: int, action: str) -> str:
    return url_for("admin.export_action", shopify_order_id=shopify_order_id, action=action)


def _res(res: Res) -> Response:
    """The package's suggested answer as a Flask response; redirects stay on this host."""
    headers = dict(res.headers)
    if "Location" in headers:
        # Relative, so a TLS-terminating proxy's http:// never leaks into the redirect.
        target = urlsplit(headers["Location"])
        headers["Location"] = target.path + (f"?{target.query}" if target.query else "")
    return Response(res.body, status=res.status, headers=headers)


def _answer(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    if request.method == "POST" or request.accept_mimetypes.best == "application/json":
        response = jsonify(error=message)
    else:
        response = make_response(
            render_template("admin/message.html", message=message, embedded=False)
        )
    response.status_code = status
    response.headers.update(headers or {})
    return response


@bp.errorhandler(auth.SessionRejectedError)
def _session_rejected(error: auth.SessionRejectedError) -> Response:
    log.info("session token rejected: %s", error.code)
    return _res(error.response)


@bp.errorhandler(AdminAccessError)
def _access_denied(error: AdminAccessError) -> Response:
    return _answer(error.status, error.message, error.headers)


@bp.errorhandler(auth.AppNotConfiguredError)
def _not_configured(error: auth.AppNotConfiguredError) -> Response:
    log.error("admin page: %s", error)
    return _answer(503, "The app is not configured to run inside Shopify yet.")


@bp.errorhandler(ShopifyApiError)
def _shopify_failed(error: ShopifyApiError) -> Response:
    log.warning("admin page: Shopify call failed: %s", error.message)
    return _answer(502, "Shopify could not be reached to finish the installation: reload the page.")


@bp.errorhandler(ExportNotFoundError)
def _not_found(error: ExportNotFoundError) -> Response:
    return _answer(404, str(error))


@bp.errorhandler(ExportAlreadyDoneError)
@bp.errorhandler(AmbiguousExportError)
def _conflict(error: LookupError | ValueError) -> Response:
    return _answer(409, str(error))


@bp.errorhandler(ValidationError)
def _invalid_settings(error: ValidationError) -> Response:
    # Field names and our messages only: pydantic's `input` would echo a token back.
    fields = {".".join(str(p) for p in e["loc"]) or "form": e["msg"] for e in error.errors()}
    response = jsonify(error="Some settings are not valid.", fields=fields)
    response.status_code = 400
    return response


@bp.after_request
def _admin_headers(response: Response) -> Response:
    """Every admin answer: framable by the shop's admin only, never cached, never sniffed."""
    settings = runtime_of_app().settings
    shop = g.get("admin_shop") or settings.shopify_shop or request.args.get("shop")
    response.headers["Content-Security-Policy"] = auth.frame_ancestors(shop)
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response
