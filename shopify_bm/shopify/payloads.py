"""Typed, tolerant models of the REST-shaped JSON that Shopify webhooks deliver.

Unknown fields are ignored (Shopify adds fields every quarter); the fields we rely on are checked,
so a payload that is not an order fails here with a readable reason instead of deep in the code.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from shopify_bm.matching import LineItem as MatchingLine
from shopify_bm.tags import split_tags

_GID_PREFIX = "gid://shopify/"


class _Payload(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class NoteAttribute(_Payload):
    """A `note_attributes` entry: the checkout's custom name/value pairs."""

    name: str
    value: str | None = None

    @field_validator("value", mode="before")
    @classmethod
    def _stringify(cls, value: Any) -> Any:
        return None if value is None else str(value)


class LineItem(_Payload):
    """An order line. `current_quantity` excludes units removed or refunded after checkout."""

    id: int
    sku: str | None = None
    quantity: int = Field(ge=0)
    current_quantity: int | None = Field(default=None, ge=0)
    fulfillable_quantity: int | None = None
    fulfillment_status: str | None = None
    title: str | None = None
    name: str | None = None
    variant_id: int | None = None

    @property
    def units(self) -> int:
        """Units that actually ship."""
        return self.current_quantity if self.current_quantity is not None else self.quantity

    def to_matching(self) -> MatchingLine:
        """The view of this line that IMEI matching needs."""
        return MatchingLine(self.id, self.sku, self.units, self.name or self.title or "")


class FulfillmentLine(_Payload):
    """A line item inside a fulfillment."""

    id: int
    quantity: int = 0
    sku: str | None = None


class Fulfillment(_Payload):
    """A shipment of (part of) an order, with its carrier and tracking."""

    id: int
    order_id: int | None = None
    status: str | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    tracking_company: str | None = None
    tracking_number: str | None = None
    tracking_numbers: list[str] = Field(default_factory=list)
    tracking_url: str | None = None
    tracking_urls: list[str] = Field(default_factory=list)
    line_items: list[FulfillmentLine] = Field(default_factory=list)

    @field_validator("tracking_numbers", "tracking_urls", "line_items", mode="before")
    @classmethod
    def _null_is_empty(cls, value: Any) -> Any:
        return [] if value is None else value


class Order(_Payload):
    """An order as `orders/*` webhooks send it."""

    id: int
    name: str | None = None
    admin_graphql_api_id: str | None = None
    updated_at: datetime | None = None
    cancelled_at: datetime | None = None
    fulfillment_status: str | None = None
    tags: str = ""
    note_attributes: list[NoteAttribute] = Field(default_factory=list)
    line_items: list[LineItem]
    fulfillments: list[Fulfillment] = Field(default_factory=list)

    @field_validator("tags", mode="before")
    @classmethod
    def _tags_as_string(cls, value: Any) -> Any:
        # REST sends "a, b"; GraphQL-shaped snapshots send ["a", "b"]; absent means none.
        if value is None:
            return ""
        if isinstance(value, list):
            return ", ".join(str(v) for v in value)
        return value

    @field_validator("note_attributes", "fulfillments", mode="before")
    @classmethod
    def _null_is_empty(cls, value: Any) -> Any:
        return [] if value is None else value

    @field_validator("admin_graphql_api_id")
    @classmethod
    def _is_an_order(cls, value: str | None) -> str | None:
        # A fulfillment body also has an `id` and `line_items`; its global id says what it is.
        if value and value.startswith(_GID_PREFIX) and not value.startswith(f"{_GID_PREFIX}Order/"):
            kind = value.removeprefix(_GID_PREFIX).split("/", 1)[0]
            raise ValueError(f"this is a {kind}, not an Order")
        return value

    @property
    def tag_list(self) -> list[str]:
        """The order's tags, trimmed."""
        return split_tags(self.tags)

    def matching_lines(self) -> list[MatchingLine]:
        """The order's lines as IMEI matching sees them."""
        return [line.to_matching() for line in self.line_items]


class PayloadError(ValueError):
    """The JSON is not the Shopify object it claims to be."""


def describe_validation_error(error: ValidationError) -> str:
    """One line naming the first few fields that are wrong, for CLIs and HTTP 400 bodies."""
    parts = []
    for item in error.errors()[:3]:
        where = ".".join(str(p) for p in item["loc"]) or "body"
        parts.append(f"{where}: {item['msg']}")
    more = len(error.errors()) - 3
    if more > 0:
        parts.append(f"and {more} more")
    return "; ".join(parts)


def parse_order(data: object) -> Order:
    """Validate decoded JSON as an order, raising `PayloadError` with a one-line reason."""
    if not isinstance(data, dict):
        raise PayloadError(f"expected a JSON object (an order), got {_json_kind(data)}")
    try:
        return Order.model_validate(data)
    except ValidationError as error:
        raise PayloadError(f"not a Shopify order: {describe_validation_error(error)}") from None


def _json_kind(data: object) -> str:
    return {list: "an array", str: "a string", bool: "a boolean", type(None): "null"}.get(
        type(data), "a number"
    )


def parse_order_json(raw: bytes) -> Order:
    """Validate an order straight from the webhook's bytes (parsed in pydantic's Rust core)."""
    try:
        return Order.model_validate_json(raw)
    except ValidationError as error:
        if any(item["type"] == "json_invalid" for item in error.errors()):
            raise PayloadError("body is not valid UTF-8 JSON") from None
        raise PayloadError(f"not a Shopify order: {describe_validation_error(error)}") from None
