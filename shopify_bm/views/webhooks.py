"""Shopify webhooks: verify, store, queue, answer. No network I/O before the answer."""

from __future__ import annotations

import json

from flask import Blueprint, Response, current_app, request

from shopify_bm.ingestion import Outcome, ingest_delivery
from shopify_bm.models import utcnow
from shopify_bm.runtime import Runtime
from shopify_bm.shopify.webhooks import (
    UnsupportedContentTypeError,
    read_delivery_headers,
    verify_webhook,
)

bp = Blueprint("webhooks", __name__, url_prefix="/webhooks")
# Pre-rendered: Shopify only needs the status code, and jsonify costs more than the insert.
_ANSWERS = {outcome: json.dumps({"status": str(outcome)}).encode() for outcome in Outcome}

# The URIs declared in shopify.app.toml; every one takes any topic (the header says which).
WEBHOOK_PATHS = ("/orders", "/fulfillments", "/app/uninstalled", "/compliance")


def receive() -> tuple[Response, int]:
    """One delivery: 413 too large, 401 unsigned, 400 malformed, 200 stored or duplicate."""
    runtime: Runtime = current_app.extensions["shopify_bm"]
    body = request.get_data(cache=False)  # raises 413 past MAX_CONTENT_LENGTH, unread
    verify_webhook(
        body, request.headers.get("X-Shopify-Hmac-Sha256"), runtime.settings.webhook_secrets
    )
    headers = read_delivery_headers(request.headers)
    if request.mimetype != "application/json":
        raise UnsupportedContentTypeError(f"expected application/json, got {request.mimetype!r}")
    with runtime.db.transaction() as session:
        result = ingest_delivery(session, headers, body, utcnow())
    if result.enqueued:
        runtime.waker.notify()
    return Response(_ANSWERS[result.outcome], mimetype="application/json"), 200


for _path in WEBHOOK_PATHS:
    bp.add_url_rule(_path, f"receive{_path.replace('/', '_')}", receive, methods=["POST"])
