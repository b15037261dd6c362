"""Real-shaped Shopify webhook payloads, built from the captured fixtures, and signed posts."""

from __future__ import annotations

import copy
import json
import tomllib
import uuid
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

import httpx

from shopify_bm.shopify.webhooks import delivery_headers

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "shopify"
SECRET = "shpss_test_webhook_secret_0123456789"
SHOP = "acme-refurb.myshopify.com"
BASE_TIME = datetime(2026, 3, 10, 15, 0, tzinfo=UTC)


@cache
def _template(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / f"{name}.json").read_text())
    return data


def fixture(name: str) -> dict[str, Any]:
    """A captured payload from tests/fixtures/shopify (a fresh copy)."""
    return copy.deepcopy(_template(name))


@cache
def webhook_uris() -> dict[str, str]:
    """topic -> uri, as shopify.app.toml declares them (the file Shopify reads)."""
    config = tomllib.loads((ROOT / "shopify.app.toml").read_text())
    uris: dict[str, str] = {}
    for subscription in config["webhooks"]["subscriptions"]:
        for topic in subscription.get("topics", []) + subscription.get("compliance_topics", []):
            uris[topic] = subscription["uri"]
    return uris


def order_payload(
    order_id: int = 5_612_345_678_901,
    *,
    lines: list[tuple[str | None, int]] | None = None,
    imeis: list[str] | None = None,
    extra_tags: list[str] | None = None,
    backmarket_order_id: int | None = 81_234_567,
    fulfilled: bool = True,
    tracking_number: str | None = "6A12345678901",
    tracking_company: str | None = "Colissimo",
    updated_at: datetime | None = None,
) -> dict[str, Any]:
    """An orders/fulfilled body: `lines` are (sku, quantity); `imeis` are full tags' values."""
    order = fixture("orders_fulfilled__single_line_exportable")
    lines = lines if lines is not None else [("IP13-128-BLK", 1)]
    template_line = order["line_items"][0]
    order["id"] = order_id
    order["admin_graphql_api_id"] = f"gid://shopify/Order/{order_id}"
    order["name"] = f"#{order_id % 100000}"
    order["order_number"] = order_id % 100000
    order["updated_at"] = (updated_at or BASE_TIME).isoformat()
    tags = list(extra_tags or [])
    tags += imeis or []
    order["tags"] = ", ".join(tags)
    order["note_attributes"] = (
        [{"name": "backmarket_order_id", "value": str(backmarket_order_id)}]
        if backmarket_order_id is not None
        else []
    )
    order["line_items"] = []
    for index, (sku, quantity) in enumerate(lines):
        line = copy.deepcopy(template_line)
        line.update(
            id=order_id * 10 + index,
            admin_graphql_api_id=f"gid://shopify/LineItem/{order_id * 10 + index}",
            sku=sku,
            quantity=quantity,
            current_quantity=quantity,
            fulfillable_quantity=0 if fulfilled else quantity,
            fulfillment_status="fulfilled" if fulfilled else None,
            name=f"Phone {sku}",
            title=f"Phone {sku}",
        )
        order["line_items"].append(line)
    order["fulfillment_status"] = "fulfilled" if fulfilled else None
    fulfillment = order["fulfillments"][0]
    fulfillment.update(
        id=order_id + 7,
        order_id=order_id,
        tracking_number=tracking_number,
        tracking_numbers=[tracking_number] if tracking_number else [],
        tracking_company=tracking_company,
        created_at=BASE_TIME.isoformat(),
        updated_at=BASE_TIME.isoformat(),
        line_items=[
            {"id": line["id"], "quantity": line["quantity"], "sku": line["sku"]}
            for line in order["line_items"]
        ],
    )
    order["fulfillments"] = [fulfillment] if fulfilled else []
    return order


def fulfillment_payload(order: dict[str, Any]) -> dict[str, Any]:
    """The fulfillments/create body of the order's (first) fulfillment."""
    body = fixture("fulfillments_create__basic")
    fulfillment = order["fulfillments"][0]
    body.update({k: v for k, v in fulfillment.items() if k in body or k == "line_items"})
    body["order_id"] = order["id"]
    return body


def later(order: dict[str, Any], seconds: int = 60) -> dict[str, Any]:
    """The same order, updated `seconds` later."""
    updated = datetime.fromisoformat(order["updated_at"]) + timedelta(seconds=seconds)
    return {**copy.deepcopy(order), "updated_at": updated.isoformat()}


def post_webhook(
    base_url: str,
    topic: str,
    payload: dict[str, Any] | bytes,
    *,
    webhook_id: str | None = None,
    secret: str = SECRET,
    shop: str = SHOP,
    headers: dict[str, str] | None = None,
    client: httpx.Client | None = None,
) -> httpx.Response:
    """POST a signed delivery to the topic's URI from shopify.app.toml."""
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    sent = delivery_headers(
        topic, body, shop=shop, secret=secret, webhook_id=webhook_id or str(uuid.uuid4())
    )
    sent.update(headers or {})
    url = base_url + webhook_uris().get(topic, "/webhooks/orders")
    if client is not None:
        return client.post(url, content=body, headers=sent)
    return httpx.post(url, content=body, headers=sent, timeout=10)
