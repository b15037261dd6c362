"""Back Market's order rules: which updates and IMEI registrations it accepts (reference §3-4).

Pure functions over `Order`/`OrderLine`: they check everything first and change nothing when they
refuse, so a refused request never half-applies.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError
from stdnum import luhn

from shopify_bm.backmarket.simulator.orders import CANCELLED_LINE_STATES, Order, OrderLine

SETTABLE_STATES = (2, 3, 4, 5, 6)
# The orderline state each `new_state` moves a line out of.
_SOURCE_STATE = {2: 1, 3: 2, 4: 1, 5: 2, 6: 3}
_IMEI = re.compile(r"[0-9]{15}")
_MAX_SERIAL = 50

_Body = TypeVar("_Body", bound=BaseModel)


ERROR_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    422: "unprocessable_entity",
    429: "too_many_requests",
    500: "internal_error",
    503: "service_unavailable",
}


class ApiError(Exception):
    """A refusal, with the HTTP status and message Back Market answers it with."""

    def __init__(self, status: int, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code or ERROR_CODES.get(status, "error")


class AlreadyShippedError(ApiError):
    """A state-3 update of lines that are all shipped: the second write a client must not send."""

    def __init__(self) -> None:
        super().__init__(400, "order already shipped", "order_already_shipped")


class UpdateOrder(BaseModel):
    """The body of `POST /ws/orders/{order_id}`; unknown fields are ignored, as by Back Market."""

    model_config = ConfigDict(extra="ignore")

    order_id: int
    new_state: int
    sku: str | None = None
    tracking_number: str | None = Field(None, max_length=200)
    tracking_url: str | None = Field(None, max_length=300)
    shipper: str | None = Field(None, max_length=200)
    date_shipping: AwareDatetime | None = None
    imei: str | None = None
    serial_number: str | None = None
    return_reason: int | None = None
    return_message: str | None = Field(None, max_length=500)


class OrderlineIdentifiers(BaseModel):
    """The body of `PATCH /ws/orderlines/{id}`."""

    model_config = ConfigDict(extra="ignore")

    imei: str | None = None
    serial_number: str | None = None


@dataclass(frozen=True)
class Registration:
    """Which write-once values a request stored for the first time on one line."""

    line_id: int
    imei: bool = False
    serial_number: bool = False


@dataclass(frozen=True)
class UpdateOutcome:
    """What an accepted update changed, for the simulator's counters."""

    shipped: bool  # a state-3 update moved at least one line to 3
    registration: Registration | None  # an IMEI or serial stored by the ship request
    identifiers_ignored: bool  # an IMEI or serial sent for an order that cannot take it inline


def parse_body(model: type[_Body], body: Any) -> _Body:
    """Validate a JSON body; a wrong shape is a 400 naming the first bad field."""
    if not isinstance(body, dict):
        raise ApiError(400, "the body must be a JSON object")
    try:
        return model.model_validate(body)
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "body"
        raise ApiError(400, f"{where}: {first['msg']}") from None


def _check_body(update: UpdateOrder, order_id: int) -> None:
    if update.order_id != order_id:
        raise ApiError(400, f"order_id {update.order_id} does not match the URL's {order_id}")
    if update.new_state not in SETTABLE_STATES:
        raise ApiError(400, f"new_state {update.new_state} must be in 2,3,4,5,6")
    if update.new_state == 3 and not update.tracking_number:
        raise ApiError(400, "tracking_number is required when new_state is 3")
    if update.new_state == 6 and update.return_reason is None:
        raise ApiError(400, "return_reason is required when new_state is 6")


def apply_update(order: Order, update: UpdateOrder, now: datetime) -> UpdateOutcome:
    """Move the selected lines to `new_state`, or raise without changing anything."""
    _check_body(update, order.order_id)
    new_state = update.new_state
    lines = _selected_lines(order, update)
    if not lines:
        raise ApiError(400, "the order has no orderline left to ship")
    if new_state == 3 and all(line.state == 3 for line in lines):
        raise AlreadyShippedError
    if new_state == 3 and any(line.state == 1 for line in lines):
        raise ApiError(400, "orderline not accepted")
    source = _SOURCE_STATE[new_state]
    for line in lines:
        if line.state not in (source, new_state):
            raise ApiError(
                400, f"orderline {line.id} cannot move from state {line.state} to {new_state}"
            )
    moving = [line for line in lines if line.state == source]
    if not moving:
        raise ApiError(400, f"orderline already in state {new_state}")

    registration, ignored = _ship_identifiers(order, update) if new_state == 3 else (None, False)
    for line in moving:
        line.state = new_state
    if new_state == 3:
        _record_shipment(order, moving, update, now)
    if new_state == 6:
        for line in moving:
            line.return_reason = update.return_reason or 0
            line.return_message = update.return_message or ""
    order.date_modification = now
    order.recompute_state()
    return UpdateOutcome(new_state == 3, registration, ignored)


def register_identifiers(order: Order, line: OrderLine, body: Any, now: datetime) -> Registration:
    """Store the IMEI and/or serial of a shipped, single-unit line; each is write-once."""
    identifiers = parse_body(OrderlineIdentifiers, body)
    if identifiers.imei is None and identifiers.serial_number is None:
        raise ApiError(400, "imei or serial_number is required")
    if line.quantity > 1:
        raise ApiError(
            422,
            f"orderline {line.id} has quantity {line.quantity}; "
            "only a line of quantity 1 can carry an IMEI or serial number",
        )
    if line.state != 3:
        raise ApiError(422, f"orderline {line.id} is not shipped")
    registration = _register(line, identifiers.imei, identifiers.serial_number, 422)
    order.date_modification = now
    return registration


def is_valid_imei(value: str) -> bool:
    """Fifteen ASCII digits whose last one is the Luhn check digit."""
    return bool(_IMEI.fullmatch(value)) and bool(luhn.is_valid(value))


def _ship_identifiers(order: Order, update: UpdateOrder) -> tuple[Registration | None, bool]:
    """Register the IMEI/serial sent with a ship request, or say it was ignored.

    Back Market processes them only for an order of one line of quantity 1; otherwise they are
    dropped silently, so the answer is 200 and the caller must PATCH each line.
    """
    # Empty strings are how many clients say "no value" in this body.
    imei, serial_number = update.imei or None, update.serial_number or None
    if not (imei or serial_number):
        return None, False
    if len(order.lines) == 1 and order.lines[0].quantity == 1:
        return _register(order.lines[0], imei, serial_number, 400), False
    return None, True


def _record_shipment(
    order: Order, moving: list[OrderLine], update: UpdateOrder, now: datetime
) -> None:
    order.tracking_number = update.tracking_number or ""
    order.tracking_url = update.tracking_url or order.tracking_url
    order.shipper = update.shipper or order.shipper
    order.date_shipping = update.date_shipping or now
    for line in moving:
        line.shipper = order.shipper


def _selected_lines(order: Order, update: UpdateOrder) -> list[OrderLine]:
    if update.sku:
        lines = [line for line in order.lines if line.listing == update.sku]
        if lines:
            return lines
    elif update.new_state == 3:
        # One order is one parcel: shipping without a SKU ships every line still live.
        return [line for line in order.lines if line.state not in CANCELLED_LINE_STATES]
    raise ApiError(400, "sku not found")


def _register(
    line: OrderLine, imei: str | None, serial_number: str | None, status: int
) -> Registration:
    """Check then store the values; `status` is 400 inside an order update, 422 on PATCH."""
    if imei is not None and not is_valid_imei(imei):
        raise ApiError(status, f"{imei!r} is not a valid IMEI")
    if serial_number is not None and not 0 < len(serial_number) <= _MAX_SERIAL:
        raise ApiError(status, f"serial_number must have 1 to {_MAX_SERIAL} characters")
    for name, old, new in (
        ("imei", line.imei, imei),
        ("serial_number", line.serial_number, serial_number),
    ):
        if new is not None and old and old != new:
            raise ApiError(
                status, f"orderline {line.id} already has a {name}; it cannot be corrected"
            )
    registration = Registration(
        line.id,
        imei=imei is not None and not line.imei,
        serial_number=serial_number is not None and not line.serial_number,
    )
    if imei is not None:
        line.imei = imei
    if serial_number is not None:
        line.serial_number = serial_number
    return registration
