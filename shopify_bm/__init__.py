"""shopify-bm: tells Back Market that a Shopify order shipped, with one IMEI per phone."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from flask import Flask

    from shopify_bm.runtime import Runtime
    from shopify_bm.settings import Settings

__version__ = "0.1.0"
TEMPLATES = Path(__file__).resolve().parent.parent / "templates"


def create_app(settings: Settings | None = None, *, runtime: Runtime | None = None) -> Flask:
    """The Flask app: settings from the environment unless given (tests pass their own)."""
    # Imported here so the CLI's `check` starts without loading the web and database stack.
    from flask import Flask  # noqa: PLC0415

    from shopify_bm.runtime import Runtime  # noqa: PLC0415
    from shopify_bm.views import admin, health, webhooks  # noqa: PLC0415

    runtime = runtime or Runtime.start(settings)
    app = Flask(
        __name__,
        template_folder=str(TEMPLATES),
        instance_path=str(runtime.settings.instance_path.resolve()),
    )
    app.config["MAX_CONTENT_LENGTH"] = runtime.settings.webhook_max_bytes
    app.extensions["shopify_bm"] = runtime

    app.register_blueprint(webhooks.bp)
    app.register_blueprint(health.bp)
    app.register_blueprint(admin.bp)
    _register_error_handlers(app)
    return app


def _register_error_handlers(app: Flask) -> None:
    from flask import Response, jsonify  # noqa: PLC0415
    from werkzeug.exceptions import HTTPException  # noqa: PLC0415

    from shopify_bm.shopify.webhooks import WebhookRejectedError  # noqa: PLC0415

    @app.errorhandler(WebhookRejectedError)
    def _rejected(error: WebhookRejectedError) -> tuple[Response, int]:
        app.logger.info("webhook rejected (%s): %s", error.status, error.message)
        return jsonify(error=error.message), error.status

    @app.errorhandler(HTTPException)
    def _http(error: HTTPException) -> tuple[Response, int]:
        return jsonify(error=error.description or error.name), error.code or 500
