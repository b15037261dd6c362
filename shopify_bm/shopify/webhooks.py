"""Shopify webhook deliveries: signatures and headers. Pure: bytes and mappings in, values out.

`sign_webhook` is public so tests, the demo and benchmarks build valid deliveries with the same
code that verifies them.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from shopify_bm.settings import normalize_shop_domain

ORDER_TOPICS = frozenset({"orders/fulfilled", "orders/updated", "orders/partially_fulfilled"})
FULFILLMENT_TOPICS = frozenset({"fulfillments/create", "fulfillments/update"})
LIFECYCLE_TOPICS = frozenset({"app/uninstalled"})
COMPLIANCE_TOPICS = frozenset({"customers/data_request", "customers/redact", "shop/redact"})
ACTED_ON_TOPICS = ORDER_TOPICS | FULFILLMENT_TOPICS | LIFECYCLE_TOPICS | COMPLIANCE_TOPICS


class WebhookRejectedError(Exception):
    """A delivery we refuse; `status` is the HTTP answer Shopify gets."""

    status = 400

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidSignatureError(WebhookRejectedError):
    """The HMAC is missing or does not match: not from Shopify, or signed with another secret."""

    status = 401


class MissingHeadersError(WebhookRejectedError):
    """A header every Shopify delivery carries is absent."""


class MalformedPayloadError(WebhookRejectedError):
    """The body is not the JSON object the topic promises."""


class UnsupportedContentTypeError(WebhookRejectedError):
    """Shopify sends JSON; anything else is not a Shopify delivery."""

    status = 415


class PayloadTooLargeError(WebhookRejectedError):
    """The body exceeds the size limit (SHOPIFY_BM_WEBHOOK_MAX_BYTES)."""

    status = 413


class HeaderLookup(Protocol):
    """Case-insensitive header access, as Werkzeug's `Headers` and httpx's `Headers` give."""

    def get(self, key: str, /) -> str | None:
        """The header's value, or None."""


@dataclass(frozen=True)
class DeliveryHeaders:
    """The Shopify headers of one delivery."""

    topic: str
    shop_domain: str
    webhook_id: str
    api_version: str | None
    event_id: str | None
    triggered_at: datetime | None


def sign_webhook(body: bytes, secret: str) -> str:
    """The value of `X-Shopify-Hmac-Sha256` for this body: base64 HMAC-SHA256 of the raw bytes."""
    digest = hmac.new(secret.encode(), body, hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def verify_webhook(body: bytes, signature: str | None, secrets: Sequence[str]) -> None:
    """Raise `InvalidSignatureError` unless one of the secrets (current, then old) signed body."""
    if not signature:
        raise InvalidSignatureError("missing X-Shopify-Hmac-Sha256 header")
    if not secrets:
        raise InvalidSignatureError("no webhook secret configured (SHOPIFY_API_SECRET)")
    given = signature.strip().encode()
    # Check every secret, so timing does not reveal which one matched.
    matched = False
    for secret in secrets:
        matched |= hmac.compare_digest(sign_webhook(body, secret).encode(), given)
    if not matched:
        raise InvalidSignatureError("HMAC signature does not match")


def read_delivery_headers(headers: HeaderLookup) -> DeliveryHeaders:
    """The Shopify headers, or `MissingHeadersError` naming the ones absent."""
    required = {
        "topic": "X-Shopify-Topic",
        "shop": "X-Shopify-Shop-Domain",
        "webhook_id": "X-Shopify-Webhook-Id",
    }
    values = {key: (headers.get(name) or "").strip() for key, name in required.items()}
    missing = [required[key] for key, value in values.items() if not value]
    if missing:
        raise MissingHeadersError(f"missing header(s): {', '.join(missing)}")
    if len(values["webhook_id"]) > 255 or len(values["shop"]) > 255 or len(values["topic"]) > 100:
        raise MissingHeadersError("a Shopify header is longer than Shopify ever sends")
    return DeliveryHeaders(
        topic=values["topic"].lower(),
        shop_domain=normalize_shop_domain(values["shop"]),
        webhook_id=values["webhook_id"],
        api_version=(headers.get("X-Shopify-API-Version") or "").strip()[:20] or None,
        event_id=(headers.get("X-Shopify-Event-Id") or "").strip()[:255] or None,
        triggered_at=_parse_time(headers.get("X-Shopify-Triggered-At")),
    )


def _parse_time(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return None  # informative only; a bad value must not reject the delivery
    return parsed if parsed.tzinfo is not None else None


def delivery_headers(
    topic: str,
    body: bytes,
    *,
    shop: str,
    secret: str,
    webhook_id: str,
    event_id: str | None = None,
    triggered_at: datetime | None = None,
    api_version: str = "2025-10",
) -> dict[str, str]:
    """The headers Shopify sends with `body`: for the demo, benchmarks and tests."""
    headers = {
        "Content-Type": "application/json",
        "X-Shopify-Topic": topic,
        "X-Shopify-Hmac-Sha256": sign_webhook(body, secret),
        "X-Shopify-Shop-Domain": shop,
        "X-Shopify-API-Version": api_version,
        "X-Shopify-Webhook-Id": webhook_id,
        "X-Shopify-Event-Id": event_id or webhook_id,
    }
    if triggered_at is not None:
        headers["X-Shopify-Triggered-At"] = triggered_at.isoformat()
    return headers
