"""Orders as the simulator stores them, how they are seeded, and their JSON shape (reference §5)."""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

# Orderline states a seller's update can leave a line in without shipping it (reference §4).
CANCELLED_LINE_STATES = frozenset({4, 5, 6, 7})

# The order states an order can be seeded in (reference §4), and the orderline state of each.
OrderState = Literal[0, 1, 3, 8, 9, 10]
LINE_STATE_OF_ORDER_STATE = {0: 0, 10: 8, 1: 1, 3: 2, 8: 7, 9: 3}

_CENTS = Decimal("0.01")
_FIRST_NAMES = ("Jeanne", "Lucas", "Amelia", "Jonas", "Sofia", "Tomás", "Ines", "Oliver")
_LAST_NAMES = ("Martin", "Dubois", "Smith", "Müller", "García", "Rossi", "Jansen", "Silva")


class LineSeed(BaseModel):
    """One orderline to create; `state` defaults to the one that goes with the order's state."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    sku: str = Field(min_length=1)
    quantity: int = Field(1, ge=1)
    state: int | None = Field(None, ge=0, le=9)
    unit_price: Decimal = Field(Decimal("389.00"), ge=0)
    product: str = "iPhone 13 128 Go - Noir - Débloqué"
    brand: str = "Apple"
    condition: Literal[9, 10, 11, 12] = 10
    id: int | None = Field(None, ge=1)


class OrderSeed(BaseModel):
    """One order to create for the seller whose token is `seller`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    seller: str = Field(min_length=1)
    order_id: int = Field(ge=1)
    state: OrderState = 1
    lines: list[LineSeed] = Field(min_length=1)
    country_code: str = "fr-fr"
    currency: str = "EUR"
    date_creation: AwareDatetime | None = None


@dataclass
class OrderLine:
    """An orderline; `price` covers all its units."""

    id: int
    listing: str
    quantity: int
    state: int
    price: Decimal
    product: str
    brand: str
    condition: int
    date_creation: datetime
    shipper: str = ""
    imei: str = ""
    serial_number: str = ""
    return_reason: int = 0
    return_message: str = ""

    def as_json(self, currency: str) -> dict[str, Any]:
        """The orderline as `GET /ws/orders/{id}` returns it."""
        return {
            "id": self.id,
            "date_creation": _iso(self.date_creation),
            "state": self.state,
            "listing": self.listing,
            "listing_id": _stable_id(self.listing, 1_000_000),
            "product": self.product,
            "product_id": _stable_id(self.product, 100_000),
            "brand": self.brand,
            "condition": self.condition,
            "quantity": self.quantity,
            "price": _money(self.price),
            "shipping_price": "0.00",
            "shipping_delay": 24,
            "shipper": self.shipper,
            "currency": currency,
            "orderline_fee": _money(self.price / 10),
            "sales_taxes": "0.00",
            "backcare": False,
            "backcare_price": 0,
            "return_reason": self.return_reason,
            "return_message": self.return_message,
            "imei": self.imei,
            "serial_number": self.serial_number,
        }


@dataclass
class Order:
    """An order of one seller; `state` is computed from the lines once the seller acts."""

    order_id: int
    seller: str
    state: int
    country_code: str
    currency: str
    date_creation: datetime
    date_modification: datetime
    lines: list[OrderLine] = field(default_factory=list)
    tracking_number: str = ""
    tracking_url: str = ""
    shipper: str = ""
    date_shipping: datetime | None = None

    def recompute_state(self) -> None:
        """Derive the order state from its lines, as Back Market does after each update."""
        states = {line.state for line in self.lines} - CANCELLED_LINE_STATES
        if states <= {3}:
            self.state = 9
        elif states <= {2, 3}:
            self.state = 3
        elif 1 in states:
            self.state = 1

    def as_json(self) -> dict[str, Any]:
        """The order as `GET /ws/orders/{id}` returns it: snake_case, money as strings."""
        address = _address(self.order_id, self.country_code)
        price = sum((line.price for line in self.lines), Decimal(0))
        return {
            "order_id": self.order_id,
            "state": self.state,
            "country_code": self.country_code,
            "currency": self.currency,
            "price": _money(price),
            "shipping_price": "0.00",
            "sales_taxes": "0.00",
            "payment_method": "CARD",
            "installment_payment": False,
            "paypal_reference": None,
            "date_creation": _iso(self.date_creation),
            "date_modification": _iso(self.date_modification),
            "date_payment": _iso(self.date_creation + timedelta(seconds=8)),
            "date_shipping": _iso(self.date_shipping) if self.date_shipping else None,
            "expected_dispatch_date": _iso(self.date_creation + timedelta(days=1)),
            "delivery_note": None,
            "tracking_number": self.tracking_number,
            "tracking_url": self.tracking_url,
            "shipper": self.shipper,
            "shipper_display": self.shipper,
            "is_backship": False,
            "shipping_address": address,
            "billing_address": dict(address),
            "orderlines": [line.as_json(self.currency) for line in self.lines],
        }


def build_order(seed: OrderSeed, line_ids: list[int], now: datetime) -> Order:
    """A new order from its seed; `line_ids` numbers the lines whose seed has no id."""
    created = seed.date_creation or now
    line_state = LINE_STATE_OF_ORDER_STATE[seed.state]
    ids = iter(line_ids)
    lines = [
        OrderLine(
            id=line.id if line.id is not None else next(ids),
            listing=line.sku,
            quantity=line.quantity,
            state=line.state if line.state is not None else line_state,
            price=line.unit_price * line.quantity,
            product=line.product,
            brand=line.brand,
            condition=line.condition,
            date_creation=created,
        )
        for line in seed.lines
    ]
    return Order(
        order_id=seed.order_id,
        seller=seed.seller,
        state=seed.state,
        country_code=seed.country_code,
        currency=seed.currency,
        date_creation=created,
        date_modification=created,
        lines=lines,
    )


def utc_now() -> datetime:
    """The wall clock, timezone-aware."""
    return datetime.now(UTC)


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds")


def _money(amount: Decimal) -> str:
    return str(amount.quantize(_CENTS))


def _stable_id(text: str, floor: int) -> int:
    # The same SKU or product keeps the same catalog id across runs and processes.
    return floor + zlib.crc32(text.encode()) % (9 * floor)


def _address(order_id: int, country_code: str) -> dict[str, Any]:
    return {
        "company": "",
        "first_name": _FIRST_NAMES[order_id % len(_FIRST_NAMES)],
        "last_name": _LAST_NAMES[order_id // 7 % len(_LAST_NAMES)],
        "gender": order_id % 2,
        "first_name_pronunciation": None,
        "last_name_pronunciation": None,
        "street": f"{order_id % 97 + 1} rue de Paris",
        "street2": "",
        "postal_code": f"{75001 + order_id % 20}",
        "city": "Paris",
        "country": country_code.rpartition("-")[2].upper() or "FR",
        "phone": f"+336{order_id % 100_000_000:08d}",
        "email": f"client_{order_id}@example.invalid",
        "customer_id_number": None,
    }
