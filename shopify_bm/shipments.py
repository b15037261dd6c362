"""What a Shopify order says about its Back Market shipment. Pure: no Flask, HTTP or SQL.

Which Back Market order it is (note attribute or `BM:<id>` tag), whether every unit has been
fulfilled, and which carrier and tracking number went with the parcel.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from shopify_bm.shopify.payloads import Fulfillment, Order
from shopify_bm.tags import split_tags

# Fulfillment statuses that mean the parcel really left (Shopify: pending|open|success|...).
_SHIPPED_STATUSES = frozenset({"success"})


@dataclass(frozen=True)
class Tracking:
    """The carrier details of the fulfillment that carried the order."""

    number: str | None
    company: str | None
    url: str | None
    shipped_at: datetime | None
    fulfillment_id: int


def backmarket_order_id(order: Order, note_attribute: str, tag_prefix: str) -> int | None:
    """The Back Market order id: a note attribute, else a `BM:<id>` tag; None when not ours."""
    wanted = note_attribute.casefold()
    for attribute in order.note_attributes:
        if attribute.name.strip().casefold() == wanted and attribute.value:
            number = _positive_int(attribute.value)
            if number is not None:
                return number
    prefix = tag_prefix.casefold()
    for tag in split_tags(order.tags):
        if tag.casefold().startswith(prefix):
            number = _positive_int(tag[len(prefix) :])
            if number is not None:
                return number
    return None


def _positive_int(text: str) -> int | None:
    text = text.strip()
    if text.isascii() and text.isdigit() and 0 < len(text) <= 18:
        return int(text) or None  # "0" or "000" names no order
    return None


def merge_fulfillments(order: Order | None, stored: Mapping[str, Any] | None) -> list[Fulfillment]:
    """The order's fulfillments, each in its newest known version (order payload or webhook)."""
    merged: dict[int, Fulfillment] = {}
    for fulfillment in order.fulfillments if order else []:
        merged[fulfillment.id] = fulfillment
    for raw in (stored or {}).values():
        try:
            candidate = Fulfillment.model_validate(raw)
        except ValidationError:
            continue  # a stored fulfillment we cannot read adds nothing
        current = merged.get(candidate.id)
        if current is None or _newer(candidate, current):
            merged[candidate.id] = candidate
    return sorted(merged.values(), key=lambda f: (f.created_at is None, f.created_at, f.id))


def _newer(candidate: Fulfillment, current: Fulfillment) -> bool:
    if candidate.updated_at is None:
        return False
    return current.updated_at is None or candidate.updated_at >= current.updated_at


def is_fully_fulfilled(order: Order, fulfillments: Iterable[Fulfillment]) -> bool:
    """True when every unit that still ships has left in a successful fulfillment."""
    if order.cancelled_at is not None:
        return False
    if order.fulfillment_status == "fulfilled":
        return True
    shipped: dict[int, int] = {}
    for fulfillment in fulfillments:
        if fulfillment.status in _SHIPPED_STATUSES:
            for line in fulfillment.line_items:
                shipped[line.id] = shipped.get(line.id, 0) + line.quantity
    lines = [line for line in order.line_items if line.units > 0]
    if not lines:
        return False
    return all(
        line.fulfillment_status == "fulfilled" or shipped.get(line.id, 0) >= line.units
        for line in lines
    )


def tracking_of(fulfillments: Iterable[Fulfillment]) -> Tracking | None:
    """Tracking of the newest successful fulfillment, preferring one that has a number."""
    shipped = [f for f in fulfillments if f.status in _SHIPPED_STATUSES]
    if not shipped:
        return None
    with_number = [f for f in shipped if _number(f)]
    chosen = (with_number or shipped)[-1]
    return Tracking(
        number=_number(chosen),
        company=(chosen.tracking_company or "").strip() or None,
        url=(chosen.tracking_url or next(iter(chosen.tracking_urls), None) or "").strip() or None,
        shipped_at=chosen.created_at,
        fulfillment_id=chosen.id,
    )


def _number(fulfillment: Fulfillment) -> str | None:
    for number in (fulfillment.tracking_number, *fulfillment.tracking_numbers):
        if number and number.strip():
            return number.strip()
    return None
