"""Store a verified webhook delivery and queue its export, in one transaction, without network I/O.

Called by the webhook view with the caller's session; the caller commits. Everything here is a
handful of indexed statements so Shopify gets its answer in milliseconds.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, TypeVar

from pydantic import ValidationError
from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from shopify_bm.db import DriverStatement, dialect_insert
from shopify_bm.models import Order, Shop, ShopBudget, UTCDateTime, WebhookDelivery
from shopify_bm.queue import enqueue_export
from shopify_bm.shipments import backmarket_order_id, is_fully_fulfilled, merge_fulfillments
from shopify_bm.shopify.payloads import (
    Fulfillment,
    describe_validation_error,
    parse_order_json,
)
from shopify_bm.shopify.payloads import Order as OrderPayload
from shopify_bm.shopify.webhooks import (
    COMPLIANCE_TOPICS,
    FULFILLMENT_TOPICS,
    ORDER_TOPICS,
    DeliveryHeaders,
    MalformedPayloadError,
)

NOTIFY_CHANNEL = "shopify_bm_exports"
_T = TypeVar("_T")

# The hot path runs on the driver's cursor (see db.DriverStatement): one SQL text for SQLite 3.35+
# and PostgreSQL. SQLAlchemy's per-statement machinery cost more than the database work itself.
_INSERT_DELIVERY = DriverStatement(
    """
    INSERT INTO webhook_deliveries (webhook_id, event_id, topic, shop_domain, api_version,
        triggered_at, received_at, shopify_order_id, body)
    VALUES (:webhook_id, :event_id, :topic, :shop_domain, :api_version,
        :triggered_at, :received_at, :shopify_order_id, :body)
    ON CONFLICT (webhook_id) DO NOTHING
    RETURNING id
    """,
    {"triggered_at": UTCDateTime(), "received_at": UTCDateTime()},
)
_SELECT_SHOP = DriverStatement(
    """
    SELECT id, note_attribute, tag_prefix, access_token IS NOT NULL
    FROM shops WHERE domain = :domain AND installed
    """
)
# An older snapshot (by Shopify's updated_at) never replaces a newer one. `payload` arrives as
# JSON text already (pydantic's serializer), which both databases store as it is.
_UPSERT_ORDER = DriverStatement(
    """
    INSERT INTO orders (shop_id, shopify_order_id, name, backmarket_order_id, payload,
        order_updated_at, fulfillments, updated_at)
    VALUES (:shop_id, :shopify_order_id, :name, :backmarket_order_id, :payload,
        :order_updated_at, '{}', :now)
    ON CONFLICT (shop_id, shopify_order_id) DO UPDATE SET
        payload = excluded.payload,
        order_updated_at = excluded.order_updated_at,
        name = excluded.name,
        backmarket_order_id = excluded.backmarket_order_id,
        updated_at = excluded.updated_at
    WHERE orders.order_updated_at IS NULL
        OR (excluded.order_updated_at IS NOT NULL
            AND orders.order_updated_at <= excluded.order_updated_at)
    RETURNING fulfillments
    """,
    {"order_updated_at": UTCDateTime(), "now": UTCDateTime()},
)
_ORDER_EXISTS = DriverStatement(
    "SELECT 1 FROM orders WHERE shop_id = :shop_id AND shopify_order_id = :oid"
)
_JOB_EXISTS = DriverStatement(
    "SELECT 1 FROM export_jobs WHERE shop_id = :shop_id AND shopify_order_id = :oid"
)
_NOTIFY = DriverStatement(f"NOTIFY {NOTIFY_CHANNEL}")


class Outcome(StrEnum):
    """What became of a delivery."""

    STORED = "stored"  # new delivery, recorded (and an export queued when it calls for one)
    DUPLICATE = "duplicate"  # this webhook id was already stored: nothing to do


@dataclass(frozen=True)
class IngestResult:
    """The answer to one delivery."""

    outcome: Outcome
    enqueued: bool = False


@dataclass(frozen=True)
class _ShopRow:
    id: int
    note_attribute: str
    tag_prefix: str
    can_fetch_orders: bool


def parse_payload(body: bytes) -> dict[str, Any]:
    """Decode the JSON object every topic sends, or `MalformedPayloadError`."""
    try:
        data = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise MalformedPayloadError("body is not valid UTF-8 JSON") from None
    if not isinstance(data, dict):
        raise MalformedPayloadError("body is not a JSON object")
    return data


def ingest_delivery(
    session: Session, headers: DeliveryHeaders, body: bytes, now: datetime
) -> IngestResult:
    """Record the delivery once, update the order snapshot, and queue the export it implies.

    The body is validated for its topic before anything is stored: a malformed delivery is
    refused (400), never half-recorded.
    """
    order: OrderPayload | None = None
    fulfillment: Fulfillment | None = None
    data: dict[str, Any] = {}
    if headers.topic in ORDER_TOPICS:
        order = _validated(lambda: parse_order_json(body))  # bytes straight to the model
    elif headers.topic in FULFILLMENT_TOPICS:
        fulfillment = _validated(lambda: Fulfillment.model_validate_json(body))
        if fulfillment.order_id is None:
            raise MalformedPayloadError("fulfillment has no order_id")
    else:
        data = parse_payload(body)

    order_id = order.id if order else (fulfillment.order_id if fulfillment else None)
    inserted = _INSERT_DELIVERY.execute(
        session,
        {
            "webhook_id": headers.webhook_id,
            "event_id": headers.event_id,
            "topic": headers.topic,
            "shop_domain": headers.shop_domain,
            "api_version": headers.api_version,
            "triggered_at": headers.triggered_at,
            "received_at": now,
            "shopify_order_id": order_id,
            "body": body.decode("utf-8"),
        },
    )
    if not inserted:
        return IngestResult(Outcome.DUPLICATE)

    if headers.topic in COMPLIANCE_TOPICS or headers.topic == "app/uninstalled":
        _shops.forget(headers.shop_domain)
        _handle_shop_lifecycle(session, headers, data)
        return IngestResult(Outcome.STORED)
    shop = _shop(session, headers.shop_domain)
    if shop is None:
        return IngestResult(Outcome.STORED)  # not an installed shop: kept, nothing to export
    enqueued = False
    if order is not None:
        enqueued = _store_order(session, shop, order, now)
    elif fulfillment is not None:
        enqueued = _store_fulfillment(session, shop, fulfillment, now)
    if enqueued and session.get_bind().dialect.name == "postgresql":
        # Wake LISTENing workers at commit, so the export starts in milliseconds, not a poll.
        _NOTIFY.execute(session, {})
    return IngestResult(Outcome.STORED, enqueued)


def _validated(parse: Callable[[], _T]) -> _T:
    try:
        result = parse()
    except ValidationError as error:
        if any(item["type"] == "json_invalid" for item in error.errors()):
            raise MalformedPayloadError("body is not valid UTF-8 JSON") from None
        raise MalformedPayloadError(describe_validation_error(error)) from None
    except ValueError as error:  # PayloadError from parse_order_json
        raise MalformedPayloadError(str(error)) from None
    return result


class _ShopCache:
    """Installed shops by domain, for a few seconds: every delivery needs one, rarely changed.

    Only found shops are kept (a shop installed a moment ago is seen at once), and lifecycle
    deliveries handled here drop their entry. Settings edited elsewhere apply within `ttl`.
    """

    def __init__(self, ttl: float = 5.0) -> None:
        self.ttl = ttl
        self._lock = threading.Lock()
        self._entries: dict[tuple[str, str], tuple[float, _ShopRow]] = {}

    def get(self, session: Session, domain: str) -> _ShopRow | None:
        key = (str(session.get_bind().engine.url), domain)
        now = time.monotonic()
        with self._lock:
            entry = self._entries.get(key)
        if entry is not None and now - entry[0] < self.ttl:
            return entry[1]
        rows = _SELECT_SHOP.execute(session, {"domain": domain})
        if not rows:
            return None
        shop = _ShopRow(rows[0][0], rows[0][1], rows[0][2], bool(rows[0][3]))
        with self._lock:
            self._entries[key] = (now, shop)
        return shop

    def forget(self, domain: str) -> None:
        with self._lock:
            for key in [k for k in self._entries if k[1] == domain]:
                del self._entries[key]


_shops = _ShopCache()


def _shop(session: Session, domain: str) -> _ShopRow | None:
    return _shops.get(session, domain)


def _store_order(session: Session, shop: _ShopRow, order: OrderPayload, now: datetime) -> bool:
    bm_id = backmarket_order_id(order, shop.note_attribute, shop.tag_prefix)
    if bm_id is None and not _known_order(session, shop.id, order.id):
        return False  # not a Back Market order: never blocked, never exported
    stored = store_order_snapshot(session, shop.id, order, bm_id, now)
    if stored is None:
        return False  # an older snapshot than the one we hold: it changes nothing
    fulfillments = merge_fulfillments(order, stored)
    if not is_fully_fulfilled(order, fulfillments) and not _has_job(session, shop.id, order.id):
        return False
    enqueue_export(session, shop.id, order.id, order.name, now)
    return True


def store_order_snapshot(
    session: Session, shop_id: int, order: OrderPayload, bm_id: int | None, now: datetime
) -> dict[str, Any] | None:
    """Keep the order unless we hold a newer one; returns its stored fulfillments, or None.

    Only the fields the export reads are kept: no customer data at rest beyond the delivery.
    """
    stored = _UPSERT_ORDER.execute(
        session,
        {
            "shop_id": shop_id,
            "shopify_order_id": order.id,
            "name": order.name,
            "backmarket_order_id": bm_id,
            "payload": order.model_dump_json(),
            "order_updated_at": order.updated_at,
            "now": now,
        },
    )
    if not stored:
        return None
    fulfillments = stored[0][0]  # PostgreSQL's driver decodes JSON; SQLite's returns text
    return dict(json.loads(fulfillments) if isinstance(fulfillments, str) else fulfillments or {})


def _store_fulfillment(
    session: Session, shop: _ShopRow, fulfillment: Fulfillment, now: datetime
) -> bool:
    order_id = fulfillment.order_id
    assert order_id is not None  # checked by the caller
    table = Order.__table__
    session.execute(
        dialect_insert(session, table)
        .values(shop_id=shop.id, shopify_order_id=order_id, fulfillments={}, updated_at=now)
        .on_conflict_do_nothing(index_elements=[table.c.shop_id, table.c.shopify_order_id])
    )
    row = session.execute(
        select(Order)
        .where(Order.shop_id == shop.id, Order.shopify_order_id == order_id)
        .with_for_update()
    ).scalar_one()
    known = dict(row.fulfillments or {})
    key = str(fulfillment.id)
    known[key] = _newest(known.get(key), fulfillment.model_dump(mode="json"))
    row.fulfillments = known
    row.updated_at = now
    if row.payload is None:
        # No order snapshot yet: the worker can fetch one through the Admin API, if we may.
        if not shop.can_fetch_orders:
            return False
    elif row.backmarket_order_id is None:
        return False
    enqueue_export(session, shop.id, order_id, row.name, now)
    return True


def _newest(previous: dict[str, Any] | None, candidate: dict[str, Any]) -> dict[str, Any]:
    if previous is None:
        return candidate
    merged = merge_fulfillments(None, {"previous": previous, "candidate": candidate})
    return merged[0].model_dump(mode="json") if merged else candidate


def _known_order(session: Session, shop_id: int, order_id: int) -> bool:
    return bool(_ORDER_EXISTS.execute(session, {"shop_id": shop_id, "oid": order_id}))


def _has_job(session: Session, shop_id: int, order_id: int) -> bool:
    return bool(_JOB_EXISTS.execute(session, {"shop_id": shop_id, "oid": order_id}))


def _handle_shop_lifecycle(
    session: Session, headers: DeliveryHeaders, data: dict[str, Any]
) -> None:
    domain = headers.shop_domain
    if headers.topic == "app/uninstalled":
        # The token is already revoked: forget it. Business data stays until shop/redact.
        session.execute(
            update(Shop)
            .where(Shop.domain == domain)
            .values(installed=False, access_token=None, refresh_token=None)
        )
    elif headers.topic == "shop/redact":
        shop_ids = select(Shop.id).where(Shop.domain == domain).scalar_subquery()
        session.execute(delete(ShopBudget).where(ShopBudget.shop_id == shop_ids))
        session.execute(delete(Shop).where(Shop.domain == domain))
        session.execute(
            delete(WebhookDelivery).where(
                WebhookDelivery.shop_domain == domain,
                WebhookDelivery.webhook_id != headers.webhook_id,
            )
        )
    elif headers.topic == "customers/redact":
        ids = [i for i in data.get("orders_to_redact") or [] if isinstance(i, int)]
        if ids:
            # Order snapshots hold no customer data; the raw deliveries do.
            session.execute(
                update(WebhookDelivery)
                .where(
                    WebhookDelivery.shop_domain == domain,
                    WebhookDelivery.shopify_order_id.in_(ids),
                )
                .values(body='{"redacted": true}')
            )
