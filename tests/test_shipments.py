"""What a Shopify order says about its shipment: which Back Market order, fulfilled, tracking."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from shopify_bm.shipments import (
    backmarket_order_id,
    is_fully_fulfilled,
    merge_fulfillments,
    tracking_of,
)
from shopify_bm.shopify.payloads import Fulfillment, Order, parse_order
from support.shopify import order_payload

T0 = datetime(2026, 3, 10, 15, 0, tzinfo=UTC)
NOTE = "backmarket_order_id"


def at(minutes: int) -> str:
    return (T0 + timedelta(minutes=minutes)).isoformat()


def order_with(note_attributes: list[dict[str, Any]], tags: str = "") -> Order:
    return Order.model_validate(
        {"id": 1, "tags": tags, "note_attributes": note_attributes, "line_items": []}
    )


def fulfillment(
    fulfillment_id: int,
    *,
    status: str = "success",
    lines: dict[int, int] | None = None,
    number: str | None = None,
    created: int | None = 0,
    updated: int | None = 0,
    **fields: Any,
) -> dict[str, Any]:
    return {
        "id": fulfillment_id,
        "status": status,
        "created_at": None if created is None else at(created),
        "updated_at": None if updated is None else at(updated),
        "tracking_number": number,
        "line_items": [{"id": i, "quantity": q} for i, q in (lines or {}).items()],
        **fields,
    }


# --- backmarket_order_id ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("note_attributes", "tags", "expected"),
    [
        pytest.param([{"name": NOTE, "value": "81234567"}], "", 81234567, id="note-attribute"),
        pytest.param([{"name": NOTE, "value": 81234567}], "", 81234567, id="note-as-number"),
        pytest.param(
            [{"name": " BackMarket_Order_ID ", "value": " 81234567 "}],
            "",
            81234567,
            id="note-name-any-case-and-blanks",
        ),
        pytest.param([], "vip, BM:81234567", 81234567, id="tag"),
        pytest.param([], "bm:81234567", 81234567, id="tag-any-case"),
        pytest.param([], "BM: 81234567", 81234567, id="tag-blank-after-prefix"),
        pytest.param([], "BM:abc, BM:81234567", 81234567, id="first-valid-tag"),
        pytest.param(
            [{"name": NOTE, "value": "81234567"}], "BM:99", 81234567, id="note-before-tag"
        ),
        pytest.param(
            [{"name": NOTE, "value": "n/a"}], "BM:81234567", 81234567, id="junk-note-then-tag"
        ),
        pytest.param([{"name": "other", "value": "81234567"}], "", None, id="other-attribute"),
        pytest.param([{"name": NOTE, "value": None}], "", None, id="note-null"),
        pytest.param([{"name": NOTE, "value": ""}], "", None, id="note-empty"),
        pytest.param([{"name": NOTE, "value": "abc"}], "", None, id="note-letters"),
        pytest.param([{"name": NOTE, "value": "-5"}], "", None, id="note-negative"),
        pytest.param([{"name": NOTE, "value": "81 234 567"}], "", None, id="note-spaced"),
        pytest.param([{"name": NOTE, "value": "1e5"}], "", None, id="note-exponent"),
        pytest.param(
            [{"name": NOTE, "value": "\uff18\uff11\uff12\uff13"}], "", None, id="note-full-width"
        ),
        pytest.param([{"name": NOTE, "value": "1" * 19}], "", None, id="note-too-long"),
        pytest.param([{"name": NOTE, "value": "0"}], "", None, id="note-zero"),
        pytest.param([], "BM:000", None, id="tag-zero"),
        pytest.param([], "BM:", None, id="tag-empty"),
        pytest.param([], "BMW:81234567", None, id="other-prefix"),
        pytest.param([], "XBM:81234567", None, id="prefix-not-at-start"),
        pytest.param([], "81234567", None, id="bare-number"),
        pytest.param([], "", None, id="nothing"),
    ],
)
def test_backmarket_order_id(
    note_attributes: list[dict[str, Any]], tags: str, expected: int | None
) -> None:
    assert backmarket_order_id(order_with(note_attributes, tags), NOTE, "BM:") == expected


def test_backmarket_order_id_with_the_shops_names() -> None:
    order = order_with([{"name": "bm_id", "value": "42"}], "backmarket=43")

    assert backmarket_order_id(order, "BM_ID", "BM:") == 42
    assert backmarket_order_id(order, NOTE, "BackMarket=") == 43
    assert backmarket_order_id(order, NOTE, "BM:") is None


# --- merge_fulfillments -------------------------------------------------------------------------


def order_of(*fulfillments: dict[str, Any], lines: list[dict[str, Any]] | None = None) -> Order:
    return Order.model_validate(
        {"id": 1, "line_items": lines or [], "fulfillments": list(fulfillments)}
    )


def test_merge_without_anything_is_empty() -> None:
    assert merge_fulfillments(None, None) == []
    assert merge_fulfillments(order_of(), {}) == []


@pytest.mark.parametrize(
    ("in_order", "stored", "number"),
    [
        pytest.param(
            fulfillment(7, number="OLD", updated=0),
            fulfillment(7, number="NEW", updated=5),
            "NEW",
            id="stored-newer-wins",
        ),
        pytest.param(
            fulfillment(7, number="NEW", updated=5),
            fulfillment(7, number="OLD", updated=0),
            "NEW",
            id="stored-older-loses",
        ),
        pytest.param(
            fulfillment(7, number="KNOWN", updated=0),
            fulfillment(7, number="UNDATED", updated=None),
            "KNOWN",
            id="undated-never-replaces",
        ),
        pytest.param(
            fulfillment(7, number="UNDATED", updated=None),
            fulfillment(7, number="DATED", updated=0),
            "DATED",
            id="dated-replaces-undated",
        ),
    ],
)
def test_merge_keeps_the_newest_version_of_each_fulfillment(
    in_order: dict[str, Any], stored: dict[str, Any], number: str
) -> None:
    merged = merge_fulfillments(order_of(in_order), {"7": stored})

    assert [(f.id, f.tracking_number) for f in merged] == [(7, number)]


def test_merge_adds_stored_fulfillments_and_skips_unreadable_ones() -> None:
    stored = {
        "8": fulfillment(8, created=10),
        "9": {"status": "success"},  # no id
        "10": "not an object",
        "6": fulfillment(6, created=None),
    }

    merged = merge_fulfillments(order_of(fulfillment(7, created=5)), stored)

    # Oldest first (undated last), so the last one is the newest shipment.
    assert [f.id for f in merged] == [7, 8, 6]


def test_merge_from_stored_fulfillments_alone() -> None:
    stored = {"2": fulfillment(2, created=3), "1": fulfillment(1, created=3)}

    assert [f.id for f in merge_fulfillments(None, stored)] == [1, 2]


# --- is_fully_fulfilled -------------------------------------------------------------------------


def line(line_id: int, quantity: int, current: int | None = None, status: str | None = None):
    return {
        "id": line_id,
        "quantity": quantity,
        "current_quantity": current,
        "fulfillment_status": status,
    }


@pytest.mark.parametrize(
    ("lines", "fulfillments", "expected"),
    [
        pytest.param([line(1, 1)], [fulfillment(7, lines={1: 1})], True, id="one-unit-shipped"),
        pytest.param([line(1, 2)], [fulfillment(7, lines={1: 1})], False, id="partial"),
        pytest.param(
            [line(1, 2)],
            [fulfillment(7, lines={1: 1}), fulfillment(8, lines={1: 1})],
            True,
            id="two-partial-fulfillments",
        ),
        pytest.param(
            [line(1, 1), line(2, 1)], [fulfillment(7, lines={1: 1})], False, id="line-left"
        ),
        pytest.param(
            [line(1, 1)],
            [fulfillment(7, status="cancelled", lines={1: 1})],
            False,
            id="cancelled-fulfillment",
        ),
        pytest.param(
            [line(1, 1)],
            [fulfillment(7, status="pending", lines={1: 1})],
            False,
            id="pending-fulfillment",
        ),
        pytest.param(
            [line(1, 2, current=1)],
            [fulfillment(7, lines={1: 1})],
            True,
            id="quantity-edited-down",
        ),
        pytest.param(
            [line(1, 1), line(2, 1, current=0)],
            [fulfillment(7, lines={1: 1})],
            True,
            id="removed-line-ignored",
        ),
        pytest.param([line(1, 1, current=0)], [], False, id="nothing-left-to-ship"),
        pytest.param([], [], False, id="no-lines"),
        pytest.param([line(1, 1, status="fulfilled")], [], True, id="line-says-fulfilled"),
        pytest.param(
            [line(1, 1, status="partial")], [], False, id="line-says-partial-no-fulfillment"
        ),
    ],
)
def test_is_fully_fulfilled(
    lines: list[dict[str, Any]], fulfillments: list[dict[str, Any]], expected: bool
) -> None:
    order = order_of(lines=lines)
    parsed = [Fulfillment.model_validate(f) for f in fulfillments]

    assert is_fully_fulfilled(order, parsed) is expected


def test_order_status_fulfilled_is_enough_but_cancelled_never_is() -> None:
    payload = order_payload()
    assert is_fully_fulfilled(parse_order(payload), []) is True

    payload["cancelled_at"] = at(30)
    order = parse_order(payload)
    assert is_fully_fulfilled(order, order.fulfillments) is False


# --- tracking_of --------------------------------------------------------------------------------


def tracking(*fulfillments: dict[str, Any]) -> Any:
    return tracking_of([Fulfillment.model_validate(f) for f in fulfillments])


@pytest.mark.parametrize(
    ("fulfillments", "expected_id", "number"),
    [
        pytest.param([], None, None, id="none"),
        pytest.param(
            [fulfillment(7, status="cancelled", number="X")], None, None, id="none-successful"
        ),
        pytest.param([fulfillment(7, number="A")], 7, "A", id="one"),
        pytest.param(
            [fulfillment(7, number="A"), fulfillment(8, number="B")], 8, "B", id="newest-wins"
        ),
        pytest.param(
            [fulfillment(7, number="A"), fulfillment(8, number=None)],
            7,
            "A",
            id="prefers-one-with-a-number",
        ),
        pytest.param(
            [fulfillment(7, number="A"), fulfillment(8, status="cancelled", number="B")],
            7,
            "A",
            id="cancelled-ignored",
        ),
        pytest.param(
            [fulfillment(7, number="  "), fulfillment(8, number=None)],
            8,
            None,
            id="no-number-anywhere",
        ),
        pytest.param(
            [fulfillment(7, number=None, tracking_numbers=["", " B2 "])],
            7,
            "B2",
            id="number-from-list",
        ),
        pytest.param([fulfillment(7, number=" A ")], 7, "A", id="number-trimmed"),
    ],
)
def test_tracking_of_chooses(
    fulfillments: list[dict[str, Any]], expected_id: int | None, number: str | None
) -> None:
    chosen = tracking(*fulfillments)

    if expected_id is None:
        assert chosen is None
    else:
        assert chosen is not None
        assert (chosen.fulfillment_id, chosen.number) == (expected_id, number)


@pytest.mark.parametrize(
    ("fields", "company", "url"),
    [
        pytest.param(
            {"tracking_company": "Colissimo", "tracking_url": "https://t.example/1"},
            "Colissimo",
            "https://t.example/1",
            id="given",
        ),
        pytest.param(
            {"tracking_company": "  ", "tracking_url": None, "tracking_urls": ["https://u/2"]},
            None,
            "https://u/2",
            id="url-from-list-blank-company",
        ),
        pytest.param({"tracking_url": " "}, None, None, id="blank-url"),
    ],
)
def test_tracking_of_carrier_and_url(
    fields: dict[str, Any], company: str | None, url: str | None
) -> None:
    chosen = tracking(fulfillment(7, number="A", created=15, **fields))

    assert chosen is not None
    assert (chosen.company, chosen.url, chosen.shipped_at) == (
        company,
        url,
        T0 + timedelta(minutes=15),
    )
