"""Webhook ingestion over real HTTP, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import socket
import uuid
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

import httpx
import pytest
from sqlalchemy import func, select

from shopify_bm.models import ExportJob, ExportStatus, Order, WebhookDelivery
from shopify_bm.runtime import Runtime
from shopify_bm.shopify.webhooks import delivery_headers
from support.shopify import (
    SECRET,
    SHOP,
    fixture,
    fulfillment_payload,
    later,
    order_payload,
    post_webhook,
    webhook_uris,
)

IMEI = "IP13-128-BLK:IMEI356938035643809"


def count(runtime: Runtime, model: type) -> int:
    with runtime.db.transaction() as session:
        return int(session.execute(select(func.count()).select_from(model)).scalar_one())


def jobs(runtime: Runtime) -> list[ExportJob]:
    with runtime.db.transaction() as session:
        return list(session.execute(select(ExportJob)).scalars())


def test_app_toml_declares_every_topic_the_app_handles() -> None:
    uris = webhook_uris()
    for topic in (
        "orders/fulfilled",
        "orders/updated",
        "fulfillments/create",
        "fulfillments/update",
        "app/uninstalled",
        "shop/redact",
    ):
        assert uris[topic].startswith("/webhooks/")


def test_fulfilled_order_is_stored_and_queued(live_server, runtime) -> None:
    response = post_webhook(live_server.url, "orders/fulfilled", order_payload(imeis=[IMEI]))

    assert response.status_code == 200
    assert response.json() == {"status": "stored"}
    assert count(runtime, WebhookDelivery) == 1
    [job] = jobs(runtime)
    assert job.status == ExportStatus.PENDING
    assert job.shopify_order_id == 5_612_345_678_901


def test_delivery_records_shopify_headers(live_server, runtime) -> None:
    body = json.dumps(order_payload()).encode()
    headers = delivery_headers(
        "orders/fulfilled", body, shop=SHOP, secret=SECRET, webhook_id="wh-1", event_id="ev-1"
    )
    headers["X-Shopify-Triggered-At"] = "2026-03-10T15:00:01.123456789Z"
    response = httpx.post(live_server.url + "/webhooks/orders", content=body, headers=headers)

    assert response.status_code == 200
    with runtime.db.transaction() as session:
        delivery = session.execute(select(WebhookDelivery)).scalar_one()
    assert (delivery.webhook_id, delivery.event_id, delivery.topic) == (
        "wh-1",
        "ev-1",
        "orders/fulfilled",
    )
    assert delivery.shop_domain == SHOP
    assert delivery.triggered_at is not None
    assert delivery.triggered_at.isoformat().startswith("2026-03-10T15:00:01.123456")


def test_same_delivery_five_times_is_stored_once(live_server, runtime) -> None:
    payload = order_payload(imeis=[IMEI])
    answers = [
        post_webhook(live_server.url, "orders/fulfilled", payload, webhook_id="same").json()
        for _ in range(5)
    ]

    assert answers == [{"status": "stored"}] + [{"status": "duplicate"}] * 4
    assert count(runtime, WebhookDelivery) == 1
    assert len(jobs(runtime)) == 1


def test_concurrent_deliveries_for_one_order_make_one_job(live_server, runtime) -> None:
    order = order_payload(imeis=[IMEI])
    posts = [("orders/fulfilled", order), ("fulfillments/create", fulfillment_payload(order))] * 5
    with httpx.Client(timeout=10) as client, ThreadPoolExecutor(8) as pool:
        responses = list(
            pool.map(lambda p: post_webhook(live_server.url, *p, client=client), posts)
        )

    assert {r.status_code for r in responses} == {200}
    assert count(runtime, WebhookDelivery) == 10
    assert len(jobs(runtime)) == 1


def test_older_order_update_does_not_replace_newer_snapshot(live_server, runtime) -> None:
    old = order_payload(imeis=[])
    new = later(old)
    new["tags"] = IMEI
    post_webhook(live_server.url, "orders/updated", new)
    response = post_webhook(live_server.url, "orders/updated", old)

    assert response.status_code == 200
    with runtime.db.transaction() as session:
        order = session.execute(select(Order)).scalar_one()
    assert order.payload is not None
    assert order.payload["tags"] == IMEI
    assert order.order_updated_at is not None
    assert order.order_updated_at.isoformat() == new["updated_at"].replace("+00:00", "+00:00")


def test_order_that_is_not_from_back_market_is_ignored(live_server, runtime) -> None:
    response = post_webhook(
        live_server.url, "orders/fulfilled", fixture("orders_fulfilled__not_backmarket")
    )

    assert response.status_code == 200
    assert jobs(runtime) == []
    assert count(runtime, Order) == 0


def test_unfulfilled_back_market_order_is_kept_but_not_queued(live_server, runtime) -> None:
    response = post_webhook(live_server.url, "orders/updated", order_payload(fulfilled=False))

    assert response.status_code == 200
    assert count(runtime, Order) == 1
    assert jobs(runtime) == []


def test_fulfillment_merges_into_known_order_and_queues(live_server, runtime) -> None:
    unfulfilled = order_payload(fulfilled=False, imeis=[IMEI])
    post_webhook(live_server.url, "orders/updated", unfulfilled)
    shipped = order_payload(imeis=[IMEI])
    response = post_webhook(live_server.url, "fulfillments/create", fulfillment_payload(shipped))

    assert response.status_code == 200
    assert [j.status for j in jobs(runtime)] == [ExportStatus.PENDING]
    with runtime.db.transaction() as session:
        order = session.execute(select(Order)).scalar_one()
    assert list(order.fulfillments) == [str(shipped["fulfillments"][0]["id"])]


def test_known_topic_we_do_not_act_on_gets_200(live_server, runtime) -> None:
    response = post_webhook(live_server.url, "orders/create", {"id": 1})

    assert response.status_code == 200
    assert jobs(runtime) == []


def test_previous_secret_is_accepted_while_rotating(database_url, tmp_path) -> None:
    from conftest import make_settings
    from shopify_bm import create_app

    settings = make_settings(
        database_url, tmp_path, shopify_api_secret="new-secret", shopify_api_secret_old=SECRET
    )
    runtime = Runtime.start(settings)
    runtime.prepare()
    client = create_app(runtime=runtime).test_client()
    body = json.dumps(order_payload()).encode()
    for secret, expected in ((SECRET, 200), ("new-secret", 200), ("other", 401)):
        headers = delivery_headers(
            "orders/fulfilled", body, shop=SHOP, secret=secret, webhook_id=str(uuid.uuid4())
        )
        assert client.post("/webhooks/orders", data=body, headers=headers).status_code == expected
    runtime.db.dispose()


@pytest.mark.parametrize(
    ("change", "status"),
    [
        pytest.param({"X-Shopify-Hmac-Sha256": "Zm9yZ2Vk"}, 401, id="forged-signature"),
        pytest.param({"X-Shopify-Hmac-Sha256": ""}, 401, id="missing-signature"),
        pytest.param({"X-Shopify-Topic": ""}, 400, id="missing-topic"),
        pytest.param({"X-Shopify-Webhook-Id": ""}, 400, id="missing-webhook-id"),
        pytest.param({"X-Shopify-Shop-Domain": ""}, 400, id="missing-shop"),
        pytest.param({"Content-Type": "text/plain"}, 415, id="text-content-type"),
        pytest.param({"Content-Type": "application/x-www-form-urlencoded"}, 415, id="form"),
    ],
)
def test_bad_deliveries_are_rejected_and_nothing_is_stored(
    live_server, runtime, change, status
) -> None:
    response = post_webhook(live_server.url, "orders/fulfilled", order_payload(), headers=change)

    assert response.status_code == status
    assert "error" in response.json()
    assert count(runtime, WebhookDelivery) == 0


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b'{"id": 1, "line_items": [', id="truncated-json"),
        pytest.param(b"[1, 2, 3]", id="array"),
        pytest.param(b'{"id": 1}', id="order-without-line-items"),
        pytest.param(b"\xff\xfe{}", id="not-utf8"),
        pytest.param(b"", id="empty"),
    ],
)
def test_signed_but_malformed_bodies_get_400(live_server, runtime, body) -> None:
    response = post_webhook(live_server.url, "orders/fulfilled", body)

    assert response.status_code == 400
    assert count(runtime, WebhookDelivery) == 0


def test_body_truncated_in_transit_fails_the_signature(live_server, runtime) -> None:
    body = json.dumps(order_payload()).encode()
    headers = delivery_headers("orders/fulfilled", body, shop=SHOP, secret=SECRET, webhook_id="t")
    response = httpx.post(
        live_server.url + "/webhooks/orders", content=body[: len(body) // 2], headers=headers
    )

    assert response.status_code == 401
    assert count(runtime, WebhookDelivery) == 0


def test_fifty_megabyte_body_gets_413_without_being_read(live_server, runtime) -> None:
    # Announce 50 MB but send only the headers: the answer must come before any body is read.
    host, port = urlsplit(live_server.url).hostname, urlsplit(live_server.url).port
    headers = delivery_headers("orders/fulfilled", b"{}", shop=SHOP, secret=SECRET, webhook_id="x")
    request = "POST /webhooks/orders HTTP/1.1\r\nHost: test\r\nContent-Length: 52428800\r\n"
    request += "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
    with socket.create_connection((host, port), timeout=10) as connection:
        connection.sendall(request.encode())
        answer = connection.recv(4096).decode(errors="replace")

    assert answer.startswith("HTTP/1.1 413")
    assert count(runtime, WebhookDelivery) == 0


def test_other_methods_get_405(live_server) -> None:
    for method in ("GET", "PUT", "DELETE"):
        response = httpx.request(method, live_server.url + "/webhooks/orders")
        assert response.status_code == 405


def test_app_uninstalled_forgets_the_shopify_token(live_server, runtime) -> None:
    from shopify_bm.models import Shop

    with runtime.db.transaction() as session:
        session.execute(select(Shop)).scalar_one().access_token = "shpat_secret"
    response = post_webhook(live_server.url, "app/uninstalled", {"id": 1, "domain": SHOP})

    assert response.status_code == 200
    with runtime.db.transaction() as session:
        shop = session.execute(select(Shop)).scalar_one()
    assert (shop.installed, shop.access_token) == (False, None)
