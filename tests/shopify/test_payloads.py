"""Typed models of the order and fulfillment JSON that Shopify webhooks deliver."""

from __future__ import annotations

import base64
import copy
import hashlib
import hmac
import json
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from shopify_bm.shopify.payloads import (
    Fulfillment,
    Order,
    PayloadError,
    describe_validation_error,
    parse_order,
)

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "shopify"
# headers.json signs each fixture's exact bytes with this app secret, as Shopify would.
FIXTURE_WEBHOOK_SECRET = "fixture-webhook-secret"


def fixture_bytes(name: str) -> bytes:
    return (FIXTURES / f"{name}.json").read_bytes()


def load_fixture(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(fixture_bytes(name))
    return data


def fixture_headers() -> dict[str, dict[str, str]]:
    headers: dict[str, dict[str, str]] = json.loads((FIXTURES / "headers.json").read_text())
    return headers


ORDER_FIXTURES = sorted(p.stem for p in FIXTURES.glob("orders_*.json"))


def test_the_fixture_set_is_complete() -> None:
    assert set(ORDER_FIXTURES) >= {
        "orders_fulfilled__single_line_exportable",
        "orders_fulfilled__two_lines_exportable",
        "orders_fulfilled__qty2_one_imei_missing",
        "orders_fulfilled__sku_typo",
        "orders_fulfilled__bad_luhn",
        "orders_fulfilled__quantity_edited_down",
        "orders_fulfilled__line_without_sku",
        "orders_fulfilled__not_backmarket",
        "orders_updated__tag_fixed",
    }
    assert (FIXTURES / "fulfillments_create__basic.json").is_file()


# --- one test per fixture: what the model reads from it --------------------------------------


@pytest.mark.parametrize(
    ("name", "tags", "units"),
    [
        pytest.param(
            "orders_fulfilled__single_line_exportable",
            ["BackMarket", "IP13-128-MID:IMEI356938035643809"],
            {14512345678901: 1},
            id="single-line",
        ),
        pytest.param(
            "orders_fulfilled__two_lines_exportable",
            [
                "BackMarket",
                "IP13-128-MID:IMEI490154203237518",
                "sms21-128-gry:IMEI352099001761481",
                "SMS21-128-GRY:IMEI353918050543210",
            ],
            {14512345678911: 1, 14512345678912: 2},
            id="two-lines",
        ),
        pytest.param(
            "orders_fulfilled__qty2_one_imei_missing",
            ["BackMarket", "SMS21-128-GRY:IMEI353305112345679"],
            {14512345678921: 2},
            id="qty2-one-imei",
        ),
        pytest.param(
            "orders_fulfilled__sku_typo",
            ["BackMarket", "IP13-128-MDI:IMEI356889107742138"],
            {14512345678931: 1},
            id="sku-typo",
        ),
        pytest.param(
            "orders_fulfilled__bad_luhn",
            ["BackMarket", "PIX7-128-OBS:IMEI352896110520398"],
            {14512345678941: 1},
            id="bad-luhn",
        ),
        pytest.param(
            "orders_fulfilled__quantity_edited_down",
            ["BackMarket", "SMS21-128-GRY:IMEI013327001465717"],
            {14512345678951: 1},
            id="quantity-edited-down",
        ),
        pytest.param(
            "orders_fulfilled__line_without_sku",
            ["BackMarket", "IP13-128-MID:IMEI353305112345679"],
            {14512345678961: 1, 14512345678962: 1},
            id="line-without-sku",
        ),
        pytest.param(
            "orders_fulfilled__not_backmarket",
            ["newsletter", "vip"],
            {14512345678971: 1},
            id="not-backmarket",
        ),
        pytest.param(
            "orders_updated__tag_fixed",
            ["BackMarket", "PIX7-128-OBS:IMEI352896110520397"],
            {14512345678941: 1},
            id="tag-fixed",
        ),
    ],
)
def test_parse_order_reads_each_fixture(name: str, tags: list[str], units: dict[int, int]) -> None:
    raw = load_fixture(name)

    order = parse_order(raw)

    assert order.id == raw["id"]
    assert order.name == raw["name"]
    assert order.admin_graphql_api_id == f"gid://shopify/Order/{raw['id']}"
    assert order.updated_at == datetime.fromisoformat(raw["updated_at"])
    assert order.updated_at is not None
    assert order.updated_at.tzinfo is not None
    assert order.fulfillment_status == "fulfilled"
    assert order.cancelled_at is None
    assert order.tag_list == tags
    assert {li.id: li.units for li in order.line_items} == units
    assert [(m.id, m.sku, m.units) for m in order.matching_lines()] == [
        (li["id"], li["sku"], units[li["id"]]) for li in raw["line_items"]
    ]
    assert len(order.fulfillments) == 1
    fulfillment = order.fulfillments[0]
    assert fulfillment.order_id == order.id
    assert fulfillment.status == "success"
    assert fulfillment.tracking_number == raw["fulfillments"][0]["tracking_number"]
    assert fulfillment.tracking_numbers == [fulfillment.tracking_number]


def note_attribute(order: Order, name: str) -> str | None:
    return next((a.value for a in order.note_attributes if a.name == name), None)


@pytest.mark.parametrize("name", ORDER_FIXTURES)
def test_back_market_orders_carry_their_order_id_in_note_attributes(name: str) -> None:
    order = parse_order(load_fixture(name))

    bm_id = note_attribute(order, "backmarket_order_id")

    if name == "orders_fulfilled__not_backmarket":
        assert bm_id is None
        assert order.note_attributes == []
    else:
        assert bm_id is not None
        assert bm_id.isdigit()


def test_units_are_current_quantity_after_an_edit() -> None:
    order = parse_order(load_fixture("orders_fulfilled__quantity_edited_down"))

    (item,) = order.line_items
    assert (item.quantity, item.current_quantity, item.units) == (2, 1, 1)
    assert order.matching_lines()[0].units == 1


def test_units_fall_back_to_quantity_without_current_quantity() -> None:
    raw = load_fixture("orders_fulfilled__qty2_one_imei_missing")
    del raw["line_items"][0]["current_quantity"]

    order = parse_order(raw)

    assert order.line_items[0].current_quantity is None
    assert order.line_items[0].units == 2


def test_a_line_without_sku_reads_as_none() -> None:
    order = parse_order(load_fixture("orders_fulfilled__line_without_sku"))

    assert [li.sku for li in order.line_items] == ["IP13-128-MID", None]
    assert order.matching_lines()[1].title == "Coque silicone offerte"


def test_matching_lines_use_the_line_name_as_title() -> None:
    order = parse_order(load_fixture("orders_fulfilled__two_lines_exportable"))

    assert [m.title for m in order.matching_lines()] == [
        "iPhone 13 128 Go - Minuit - Débloqué - Très bon état",
        "Galaxy S21 5G 128 Go - Gris - Parfait état",
    ]


def test_fulfillments_create_body_parses_as_a_fulfillment() -> None:
    raw = load_fixture("fulfillments_create__basic")

    fulfillment = Fulfillment.model_validate(raw)

    assert fulfillment.id == raw["id"]
    assert fulfillment.order_id == 5812345678901
    assert fulfillment.status == "success"
    assert fulfillment.tracking_company == "Colissimo"
    assert fulfillment.tracking_number == "6A23456789012"
    assert fulfillment.tracking_urls == [fulfillment.tracking_url]
    assert [(li.id, li.quantity, li.sku) for li in fulfillment.line_items] == [
        (14512345678901, 1, "IP13-128-MID")
    ]
    assert fulfillment.created_at is not None
    assert fulfillment.created_at.utcoffset() is not None


def test_a_fulfillment_body_is_not_an_order() -> None:
    with pytest.raises(PayloadError) as caught:
        parse_order(load_fixture("fulfillments_create__basic"))

    assert "admin_graphql_api_id" in str(caught.value)
    assert "this is a Fulfillment, not an Order" in str(caught.value)


def test_an_order_may_come_without_a_global_id() -> None:
    raw = single_line()
    del raw["admin_graphql_api_id"]

    assert parse_order(raw).admin_graphql_api_id is None


def test_fulfillment_without_tracking_reads_as_empty() -> None:
    raw = load_fixture("fulfillments_create__basic")
    raw.update(tracking_company=None, tracking_number=None, tracking_url=None)
    raw.update(tracking_numbers=None, tracking_urls=None, line_items=None)

    fulfillment = Fulfillment.model_validate(raw)

    assert fulfillment.tracking_number is None
    assert fulfillment.tracking_numbers == []
    assert fulfillment.tracking_urls == []
    assert fulfillment.line_items == []


# --- tolerance: what Shopify may send otherwise ----------------------------------------------


def single_line() -> dict[str, Any]:
    return load_fixture("orders_fulfilled__single_line_exportable")


@pytest.mark.parametrize(
    ("tags", "expected"),
    [
        pytest.param(
            ["vip", "SKU1:IMEI356938035643809"], "vip, SKU1:IMEI356938035643809", id="list"
        ),
        pytest.param(None, "", id="null"),
        pytest.param("", "", id="empty"),
    ],
)
def test_order_tags_accept_a_graphql_list_or_null(tags: object, expected: str) -> None:
    raw = single_line()
    raw["tags"] = tags

    assert parse_order(raw).tags == expected


def test_absent_tags_mean_none() -> None:
    raw = single_line()
    del raw["tags"]

    assert parse_order(raw).tag_list == []


def test_null_lists_read_as_empty() -> None:
    raw = single_line()
    raw.update(note_attributes=None, fulfillments=None)

    order = parse_order(raw)

    assert order.note_attributes == []
    assert order.fulfillments == []


def test_note_attribute_values_are_read_as_text() -> None:
    raw = single_line()
    raw["note_attributes"] = [
        {"name": "backmarket_order_id", "value": 48613270},
        {"name": "gift", "value": None},
    ]

    order = parse_order(raw)

    assert note_attribute(order, "backmarket_order_id") == "48613270"
    assert note_attribute(order, "gift") is None


def test_unknown_fields_are_ignored() -> None:
    raw = single_line()
    raw["a_field_shopify_adds_next_quarter"] = {"x": 1}
    raw["line_items"][0]["another_new_field"] = [1, 2]

    assert parse_order(raw).id == raw["id"]


# --- what is not an order: one readable line ------------------------------------------------


def broken(change: str) -> dict[str, Any]:
    raw = copy.deepcopy(single_line())
    match change:
        case "no-line-items":
            del raw["line_items"]
        case "null-line-items":
            raw["line_items"] = None
        case "line-items-object":
            raw["line_items"] = {"id": 1}
        case "no-id":
            del raw["id"]
        case "id-text":
            raw["id"] = "order-1042"
        case "negative-quantity":
            raw["line_items"][0]["quantity"] = -1
        case "negative-current-quantity":
            raw["line_items"][0]["current_quantity"] = -1
        case "quantity-missing":
            del raw["line_items"][0]["quantity"]
        case "line-id-missing":
            del raw["line_items"][0]["id"]
        case "tags-number":
            raw["tags"] = 42
    return raw


@pytest.mark.parametrize(
    ("change", "where"),
    [
        pytest.param("no-line-items", "line_items: Field required", id="no-line-items"),
        pytest.param("null-line-items", "line_items:", id="null-line-items"),
        pytest.param("line-items-object", "line_items:", id="line-items-object"),
        pytest.param("no-id", "id: Field required", id="no-id"),
        pytest.param("id-text", "id:", id="id-text"),
        pytest.param("negative-quantity", "line_items.0.quantity:", id="negative-quantity"),
        pytest.param(
            "negative-current-quantity",
            "line_items.0.current_quantity:",
            id="negative-current-quantity",
        ),
        pytest.param("quantity-missing", "line_items.0.quantity:", id="quantity-missing"),
        pytest.param("line-id-missing", "line_items.0.id:", id="line-id-missing"),
        pytest.param("tags-number", "tags:", id="tags-number"),
    ],
)
def test_parse_order_names_the_wrong_field_in_one_line(change: str, where: str) -> None:
    with pytest.raises(PayloadError) as caught:
        parse_order(broken(change))

    message = str(caught.value)
    assert message.startswith("not a Shopify order: ")
    assert where in message
    assert "\n" not in message


@pytest.mark.parametrize(
    ("data", "kind"),
    [
        pytest.param([single_line()], "an array", id="array"),
        pytest.param("#1042", "a string", id="string"),
        pytest.param(None, "null", id="null"),
        pytest.param(1042, "a number", id="integer"),
        pytest.param(10.5, "a number", id="float"),
        pytest.param(True, "a boolean", id="boolean"),
    ],
)
def test_parse_order_refuses_json_that_is_not_an_object(data: object, kind: str) -> None:
    with pytest.raises(PayloadError, match=f"^expected a JSON object \\(an order\\), got {kind}$"):
        parse_order(data)


def test_describe_validation_error_lists_three_fields_then_counts_the_rest() -> None:
    with pytest.raises(ValidationError) as caught:
        Order.model_validate({"line_items": [{}, {}]})

    text = describe_validation_error(caught.value)

    assert text.count(";") == 3
    assert text.startswith("id: Field required; line_items.0.id: Field required")
    assert text.endswith("and 2 more")


# --- the headers recorded beside the fixtures -----------------------------------------------


def test_every_fixture_has_its_delivery_headers() -> None:
    names = {p.stem for p in FIXTURES.glob("*.json")} - {"headers"}

    assert set(fixture_headers()) == names


@pytest.mark.parametrize("name", sorted(fixture_headers()))
def test_fixture_headers_match_the_body_they_came_with(name: str) -> None:
    headers = fixture_headers()[name]
    body = fixture_bytes(name)
    signature = base64.b64encode(
        hmac.new(FIXTURE_WEBHOOK_SECRET.encode(), body, hashlib.sha256).digest()
    ).decode()

    assert headers["X-Shopify-Topic"] == name.split("__", maxsplit=1)[0].replace("_", "/", 1)
    assert hmac.compare_digest(headers["X-Shopify-Hmac-Sha256"], signature), (
        f"{name}.json changed: record X-Shopify-Hmac-Sha256 = {signature} in headers.json"
    )
    assert headers["X-Shopify-Shop-Domain"].endswith(".myshopify.com")
    assert headers["X-Shopify-API-Version"] == "2025-10"
    assert headers["Content-Type"] == "application/json"
    triggered = datetime.fromisoformat(headers["X-Shopify-Triggered-At"])
    updated = datetime.fromisoformat(json.loads(body)["updated_at"])
    assert abs((triggered - updated).total_seconds()) < 1


def test_fixture_deliveries_have_distinct_ids() -> None:
    headers = fixture_headers().values()

    assert len({h["X-Shopify-Webhook-Id"] for h in headers}) == len(headers)
    assert len({h["X-Shopify-Event-Id"] for h in headers}) == len(headers)
