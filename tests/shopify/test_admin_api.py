"""Admin GraphQL through Shopify's package, against a fake Shopify over a real socket."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from conftest import TEST_SHOP
from shopify_bm.shipments import backmarket_order_id, is_fully_fulfilled, tracking_of
from shopify_bm.shopify import admin_api
from shopify_bm.shopify.errors import (
    ShopifyAccessDeniedError,
    ShopifyOrderNotFoundError,
    ShopifyQueryError,
    ShopifyThrottledError,
    ShopifyTokenError,
    ShopifyUnavailableError,
)
from shopify_bm.shopify.payloads import parse_order
from support.shopify_fake import LocalShopify, Reply, RunningFake, graphql_order, running_fake

ORDER_ID = 5_812_345_678_901
GID = f"gid://shopify/Order/{ORDER_ID}"
VERSION = "2025-10"


@pytest.fixture
def shopify() -> Iterator[RunningFake]:
    with running_fake() as running:
        running.fake.valid_access_tokens.add("shpat_valid")
        yield running


def fetch(shopify: RunningFake, order: str | int = GID, token: str = "shpat_valid") -> Any:
    return admin_api.fetch_order(TEST_SHOP, token, order, VERSION, http_client=shopify.client)


def test_an_order_comes_back_in_the_webhook_shape(shopify: RunningFake) -> None:
    shopify.fake.orders[GID] = graphql_order(ORDER_ID, lines=[("IP13-128-MID", 1), ("CASE", 2)])

    data = fetch(shopify)

    order = parse_order(data)  # what webhook payloads go through
    assert (order.id, order.name, order.admin_graphql_api_id) == (ORDER_ID, "#1042", GID)
    assert order.tags == "BackMarket, IP13-128-MID:IMEI356938035643809"
    assert backmarket_order_id(order, "backmarket_order_id", "BM:") == 48613270
    assert [(line.id, line.sku, line.units) for line in order.line_items] == [
        (ORDER_ID * 10, "IP13-128-MID", 1),
        (ORDER_ID * 10 + 1, "CASE", 2),
    ]
    assert all(line.fulfillment_status == "fulfilled" for line in order.line_items)
    assert is_fully_fulfilled(order, order.fulfillments)
    tracking = tracking_of(order.fulfillments)
    assert tracking is not None
    assert (tracking.company, tracking.number, tracking.url) == (
        "Colissimo",
        "6A12345678901",
        "https://t.example/6A",
    )
    assert order.fulfillments[0].line_items[1].quantity == 2


def test_the_request_is_graphql_with_the_token_header(shopify: RunningFake) -> None:
    shopify.fake.orders[GID] = graphql_order(ORDER_ID)

    fetch(shopify, ORDER_ID)  # a numeric id works too

    request = shopify.fake.graphql_requests[0]
    assert request["host"] == TEST_SHOP
    assert request["version"] == VERSION
    assert request["token"] == "shpat_valid"
    assert request["variables"] == {"id": GID}
    assert "query OrderForExport" in request["query"]
    # Protected customer data level 1 only: no customer, address, email or phone.
    for field in ("customer", "email", "phone", "Address"):
        assert field not in request["query"]


def test_an_unfulfilled_order_is_not_fully_fulfilled(shopify: RunningFake) -> None:
    shopify.fake.orders[GID] = graphql_order(ORDER_ID, fulfilled=False)

    order = parse_order(fetch(shopify))

    assert order.fulfillment_status is None
    assert order.fulfillments == []
    assert not is_fully_fulfilled(order, order.fulfillments)


def test_more_than_one_page_of_lines_is_read_whole(shopify: RunningFake) -> None:
    lines: list[tuple[str | None, int]] = [(f"SKU-{i}", 1) for i in range(120)]
    shopify.fake.orders[GID] = graphql_order(ORDER_ID, lines=lines)

    order = parse_order(fetch(shopify))

    assert [line.sku for line in order.line_items] == [f"SKU-{i}" for i in range(120)]
    assert len(shopify.fake.graphql_requests) == 3
    assert shopify.fake.graphql_requests[2]["variables"] == {"id": GID, "after": "100"}


@pytest.mark.parametrize(
    ("reply", "error"),
    [
        (Reply(401, {"errors": "[API] Invalid API key or access token"}), ShopifyTokenError),
        (Reply(403, {"errors": "forbidden"}), ShopifyAccessDeniedError),
        (Reply(503, {"errors": "unavailable"}), ShopifyUnavailableError),
        (Reply(500, {"errors": "oops"}), ShopifyUnavailableError),
        (Reply(402, {"errors": "Unavailable Shop"}), ShopifyUnavailableError),
        (Reply(400, {"errors": "bad query"}), ShopifyQueryError),
        (
            Reply(200, {"errors": [{"message": "Field 'x' doesn't exist"}], "data": None}),
            ShopifyQueryError,
        ),
        (
            Reply(
                200,
                {
                    "errors": [
                        {"message": "Access denied", "extensions": {"code": "ACCESS_DENIED"}}
                    ],
                    "data": {"order": None},
                },
            ),
            ShopifyAccessDeniedError,
        ),
        (Reply(200, {"data": {"order": None}}), ShopifyOrderNotFoundError),
    ],
    ids=[
        "401",
        "403",
        "503",
        "500",
        "402-frozen",
        "400",
        "graphql-error",
        "access-denied",
        "not-found",
    ],
)
def test_each_failure_has_its_own_error(
    shopify: RunningFake, reply: Reply, error: type[Exception]
) -> None:
    shopify.fake.graphql_faults.append(reply)

    with pytest.raises(error):
        fetch(shopify)


def test_a_revoked_token_is_a_token_problem_not_transient(shopify: RunningFake) -> None:
    with pytest.raises(ShopifyTokenError) as caught:
        fetch(shopify, token="shpat_revoked")

    assert not caught.value.transient


def test_http_429_is_transient_with_its_retry_after_and_no_sleep(shopify: RunningFake) -> None:
    shopify.fake.graphql_faults.append(Reply(429, {"errors": "Throttled"}, {"Retry-After": "2.0"}))

    with pytest.raises(ShopifyThrottledError) as caught:
        fetch(shopify)

    assert caught.value.transient
    assert caught.value.retry_after == 2.0
    assert len(shopify.fake.graphql_requests) == 1  # retried by the queue, not in-process


def test_a_throttled_query_says_when_the_bucket_refills(shopify: RunningFake) -> None:
    shopify.fake.graphql_faults.append(
        Reply(
            200,
            {
                "errors": [{"message": "Throttled", "extensions": {"code": "THROTTLED"}}],
                "extensions": {
                    "cost": {
                        "requestedQueryCost": 560,
                        "actualQueryCost": None,
                        "throttleStatus": {
                            "maximumAvailable": 2000,
                            "currentlyAvailable": 60,
                            "restoreRate": 100,
                        },
                    }
                },
            },
        )
    )

    with pytest.raises(ShopifyThrottledError) as caught:
        fetch(shopify)

    assert caught.value.retry_after == pytest.approx(5.0)


def test_an_unreachable_shopify_is_transient() -> None:
    nothing_listens = httpx.Client(transport=LocalShopify(9), timeout=2)  # port 9: closed

    with pytest.raises(ShopifyUnavailableError), nothing_listens:
        admin_api.fetch_order(TEST_SHOP, "shpat_valid", GID, VERSION, http_client=nothing_listens)


@pytest.mark.parametrize(
    ("given", "gid"),
    [
        (GID, GID),
        (ORDER_ID, GID),
        (str(ORDER_ID), GID),
        (f" {ORDER_ID} ", GID),
    ],
)
def test_order_ids_become_global_ids(given: str | int, gid: str) -> None:
    assert admin_api.order_gid(given) == gid


@pytest.mark.parametrize("given", ["gid://shopify/LineItem/1", "#1042", "", "12a"])
def test_other_ids_are_refused(given: str) -> None:
    with pytest.raises(ValueError, match="not a Shopify order id"):
        admin_api.order_gid(given)


def test_a_shop_outside_myshopify_is_refused() -> None:
    with pytest.raises(ValueError, match="myshopify"):
        admin_api.fetch_order("shop.example.com", "shpat_valid", GID, VERSION)
