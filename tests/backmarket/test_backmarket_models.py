"""Back Market's orders as captured-shaped JSON, and the shipment we send."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from pydantic import ValidationError

from shopify_bm.backmarket.models import Order, OrderLineState, OrderState, Shipment
from support.backmarket import fixture


def test_a_single_line_order_is_read_with_its_fields() -> None:
    order = Order.model_validate(fixture("order__single_line"))

    assert (order.order_id, order.state, order.country_code) == (
        81234567,
        OrderState.ACCEPTED,
        "fr-fr",
    )
    assert order.tracking_number == ""
    assert order.date_shipping is None
    assert order.date_creation == datetime(2026, 3, 10, 7, 30, 12, tzinfo=UTC)
    assert order.price == Decimal("389.00")
    assert order.shipping_address is not None
    assert order.shipping_address.postal_code == "75003"
    (line,) = order.orderlines
    assert line.listing == "IP13-128-BLK-A"
    assert line.product == "iPhone 13 128 Go - Noir - Débloqué"
    assert (line.imei, line.serial_number) == ("", "")
    assert order.takes_inline_imei
    assert not order.is_shipped
    assert order.lines_awaiting_acceptance == []


def test_lines_still_to_accept_are_those_in_state_1() -> None:
    order = Order.model_validate(fixture("order__two_lines"))

    assert order.state is OrderState.PAID
    assert [line.listing for line in order.lines_awaiting_acceptance] == [
        "IP13-128-BLK-A",
        "SGS22-128-GRN-B",
    ]
    assert not order.takes_inline_imei  # two lines: IMEIs go by PATCH per line


def test_camel_case_addresses_and_null_imeis_are_read() -> None:
    order = Order.model_validate(fixture("order__quantity_two"))

    assert order.shipping_address is not None
    address = order.shipping_address
    assert (address.first_name, address.last_name) == ("Oliver", "Smith")
    assert (address.postal_code, address.phone) == ("NW1 6XE", "+447700900123")
    assert order.billing_address is None
    (line,) = order.orderlines
    assert (line.quantity, line.imei) == (2, None)
    assert not order.takes_inline_imei  # a line of quantity 2 cannot carry IMEIs at all


def test_a_shipped_order_says_so() -> None:
    order = Order.model_validate(fixture("order__shipped"))

    assert order.state is OrderState.SHIPPED
    assert order.is_shipped
    assert order.tracking_number == "6A12345678901"
    assert order.date_shipping == datetime(2026, 3, 10, 15, 0, tzinfo=UTC)
    assert order.orderlines[0].imei == "356938035643809"


@pytest.mark.parametrize(
    ("order_state", "line_states", "shipped"),
    [
        (OrderState.SHIPPED, [OrderLineState.SHIPPED], True),
        (OrderState.SHIPPED, [], True),
        (OrderState.ACCEPTED, [OrderLineState.SHIPPED, OrderLineState.SHIPPED], True),
        (OrderState.ACCEPTED, [OrderLineState.SHIPPED, OrderLineState.ACCEPTED], False),
        (OrderState.ACCEPTED, [], False),
        (OrderState.PAID, [OrderLineState.PAID], False),
    ],
)
def test_is_shipped_when_the_order_or_every_line_is(
    order_state: OrderState, line_states: list[OrderLineState], shipped: bool
) -> None:
    data = fixture("order__two_lines")
    data["state"] = order_state
    data["orderlines"] = [
        {**data["orderlines"][0], "id": index, "state": state}
        for index, state in enumerate(line_states)
    ]
    assert Order.model_validate(data).is_shipped is shipped


def test_unknown_fields_are_ignored_and_nulls_accepted() -> None:
    data = fixture("order__single_line")
    data["brand_new_field"] = {"nested": True}
    data["orderlines"][0]["imei_numbers"] = []
    for key in ("tracking_number", "tracking_url", "shipper", "shipping_address", "price"):
        data[key] = None
    for key in ("listing", "product", "imei", "serial_number", "price", "date_creation"):
        data["orderlines"][0][key] = None
    order = Order.model_validate(data)
    assert order.orderlines[0].listing is None


def test_shipment_renders_the_date_in_utc_with_z() -> None:
    shipment = Shipment(
        tracking_number=" 6A12345678901 ",
        date_shipping=datetime(2026, 3, 10, 16, 0, 0, 999_999, tzinfo=timezone(timedelta(hours=1))),
    )
    assert shipment.model_dump(mode="json", exclude_none=True) == {
        "tracking_number": "6A12345678901",
        "date_shipping": "2026-03-10T15:00:00Z",
    }


def test_shipment_refuses_a_naive_date() -> None:
    with pytest.raises(ValidationError, match="timezone"):
        Shipment(tracking_number="6A12345678901", date_shipping=datetime(2026, 3, 10, 16, 0))


@pytest.mark.parametrize(
    "fields",
    [
        {"tracking_number": ""},
        {"tracking_number": "   "},
        {"tracking_number": "x" * 201},
        {"tracking_number": "6A1", "imei": "35693803564380"},
        {"tracking_number": "6A1", "imei": "3569380356438090"},
        {"tracking_number": "6A1", "imei": "35693803564380A"},
        {"tracking_number": "6A1", "sku": "IP13-128-BLK-A"},  # shipping never names a SKU
    ],
)
def test_shipment_refuses_what_back_market_would(fields: dict[str, str]) -> None:
    with pytest.raises(ValidationError):
        Shipment.model_validate(fields)


def test_an_overlong_tracking_url_is_dropped_rather_than_refused() -> None:
    url = "https://carrier.example/track?" + "x" * 300
    assert Shipment(tracking_number="6A1", tracking_url=url).tracking_url is None
    assert Shipment(tracking_number="6A1", tracking_url=url[:300]).tracking_url == url[:300]


def test_shipment_is_frozen() -> None:
    shipment = Shipment(tracking_number="6A12345678901")
    with pytest.raises(ValidationError):
        shipment.tracking_number = "other"  # type: ignore[misc]
