"""Back Market's orders as typed values (reference §4 and §5), and the shipment we send.

Response models ignore unknown fields and accept nulls wherever Back Market has sent them: the
API grows fields, and an order we cannot read is an export we cannot do. Addresses are loose
(snake_case on the wire, camelCase in the spec) because the exports never need them.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from enum import IntEnum

from pydantic import (
    AliasChoices,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    field_serializer,
    field_validator,
)

TRACKING_URL_MAX_LENGTH = 300
IMEI_PATTERN = r"^[0-9]{15}$"  # 15 ASCII digits; the Luhn check is the matcher's job


def to_rfc3339(value: datetime) -> str:
    """An aware datetime as Back Market's RFC 3339 in UTC, e.g. `2026-03-10T15:00:00Z`."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("Back Market needs timezone-aware datetimes; got a naive one.")
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class OrderState(IntEnum):
    """An order's state, computed by Back Market from its lines; sellers cannot set it."""

    NEW = 0  # payment validation / fraud check pending; must not ship; not listed
    PAID = 1  # payment validated; the seller must accept or cancel the lines
    ACCEPTED = 3  # every line accepted; waiting for the seller to ship
    NOT_PAID = 8  # payment failed; ignore; not listed
    SHIPPED = 9  # processed: the seller shipped the parcel (final)
    PENDING = 10  # the customer still has time to pay; must not ship


class OrderLineState(IntEnum):
    """An orderline's state; `new_state` of an order update is one of these (2 to 6)."""

    NEW = 0  # waiting for payment
    PAID = 1  # paid; the seller must accept (2) or cancel (4)
    ACCEPTED = 2  # accepted; prepare the shipment, then ship (3) or refund (5)
    SHIPPED = 3  # handed to the carrier
    CANCELLED = 4  # cancelled before acceptance; the customer was refunded
    REFUNDED_BEFORE_SHIPPING = 5  # refunded after acceptance, before shipping
    REFUNDED_AFTER_SHIPPING = 6  # refunded after shipping (with a return reason)
    NOT_PAID = 7  # payment refused by the bank
    PENDING_PAYMENT = 8  # payment pending
    ON_HOLD = 9  # on hold while a partner validates the order


class _Response(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class Address(_Response):
    """A shipping or billing address, read from snake_case or camelCase keys."""

    model_config = ConfigDict(coerce_numbers_to_str=True)

    company: str | None = None
    first_name: str | None = Field(None, validation_alias=AliasChoices("first_name", "firstName"))
    last_name: str | None = Field(None, validation_alias=AliasChoices("last_name", "lastName"))
    street: str | None = None
    street2: str | None = None
    postal_code: str | None = Field(
        None, validation_alias=AliasChoices("postal_code", "postalCode")
    )
    city: str | None = None
    country: str | None = None  # ISO 3166-1 alpha-2, e.g. "FR"
    phone: str | None = Field(None, validation_alias=AliasChoices("phone", "phoneNumber"))
    email: str | None = None


class OrderLine(_Response):
    """One line of a Back Market order: a listing (the seller's SKU) and a quantity."""

    id: int  # the orderline id, for PATCH /ws/orderlines/{id}; not the order id
    state: OrderLineState
    listing: str | None = None  # the seller's SKU
    listing_id: int | None = None
    quantity: int = Field(ge=0)
    product: str | None = None  # the product title
    product_id: int | None = None
    brand: str | None = None
    condition: int | None = None
    imei: str | None = None  # "" until one is registered; write-once
    serial_number: str | None = None
    shipper: str | None = None
    price: Decimal | None = None
    currency: str | None = None
    date_creation: datetime | None = None


class Order(_Response):
    """A Back Market order, as `GET /ws/orders/{id}` and the order updates return it."""

    order_id: int
    state: OrderState
    orderlines: list[OrderLine] = Field(default_factory=list)
    tracking_number: str | None = None  # "" until shipped
    tracking_url: str | None = None
    shipper: str | None = None
    date_shipping: datetime | None = None
    date_creation: datetime | None = None
    date_modification: datetime | None = None
    date_payment: datetime | None = None
    expected_dispatch_date: datetime | None = None
    country_code: str | None = None  # the marketplace, e.g. "fr-fr"
    currency: str | None = None
    price: Decimal | None = None
    is_backship: bool | None = None  # Back Market provides the label
    shipping_address: Address | None = None
    billing_address: Address | None = None

    @property
    def is_shipped(self) -> bool:
        """Back Market already shows the parcel shipped: a second ship POST would be a new write."""
        if self.state == OrderState.SHIPPED:
            return True
        return bool(self.orderlines) and all(
            line.state == OrderLineState.SHIPPED for line in self.orderlines
        )

    @property
    def lines_awaiting_acceptance(self) -> list[OrderLine]:
        """Lines still in state 1: each SKU needs an accept POST before the order can ship."""
        return [line for line in self.orderlines if line.state == OrderLineState.PAID]

    @property
    def takes_inline_imei(self) -> bool:
        """One line of quantity 1: the only shape whose ship POST honours `imei`."""
        return len(self.orderlines) == 1 and self.orderlines[0].quantity == 1


class OrderPage(_Response):
    """One page of `GET /ws/orders`."""

    count: int | None = None
    next: str | None = None  # absolute URL of the next page; None on the last one
    previous: str | None = None
    results: list[Order] = Field(default_factory=list)


class OrderlineImei(_Response):
    """What `PATCH /ws/orderlines/{id}` says is now registered on the line."""

    imei: str | None = None
    serial_number: str | None = None


class Shipment(BaseModel):
    """The parcel details of a ship update (`new_state` 3); absent optionals are not sent.

    `imei` is only honoured by Back Market for an order of one line of quantity 1; other orders
    get one PATCH per line after shipping.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    tracking_number: str = Field(min_length=1, max_length=200)
    tracking_url: str | None = None
    shipper: str | None = Field(None, max_length=200)
    date_shipping: AwareDatetime | None = None
    imei: str | None = Field(None, pattern=IMEI_PATTERN)

    @field_validator("tracking_number", mode="before")
    @classmethod
    def _strip(cls, value: object) -> object:
        return value.strip() if isinstance(value, str) else value

    @field_validator("tracking_url", "shipper", mode="before")
    @classmethod
    def _blank_is_absent(cls, value: object) -> object:
        if isinstance(value, str):
            return value.strip() or None
        return value

    @field_validator("tracking_url")
    @classmethod
    def _drop_overlong_url(cls, value: str | None) -> str | None:
        # Back Market takes at most 300 characters; the link is a convenience, the number is not.
        if value is not None and len(value) > TRACKING_URL_MAX_LENGTH:
            return None
        return value

    @field_serializer("date_shipping")
    def _rfc3339_utc(self, value: datetime | None) -> str | None:
        return None if value is None else to_rfc3339(value)
