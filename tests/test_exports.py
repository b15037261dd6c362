"""The pure export decision: which orders are ours, what blocks them, and the Back Market calls."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from shopify_bm.backmarket.models import Order as BackMarketOrder
from shopify_bm.exports import (
    Block,
    ExportPlan,
    ExportPolicy,
    ExportProblemCode,
    Ignore,
    Overrides,
    ReadyToExport,
    evaluate_order,
    imei_patches_due,
    plan_export,
    reused_imei_problems,
)
from shopify_bm.shopify.payloads import parse_order
from shopify_bm.tags import ProblemCode
from support import backmarket
from support.shopify import BASE_TIME, order_payload

E = ExportProblemCode
I1, I2, I3, I4 = "356938035643809", "490154203237518", "352099001761481", "353918050543210"
NOW = datetime(2026, 3, 11, 9, 30, tzinfo=UTC)
POLICY = ExportPolicy()
NO_OVERRIDES = Overrides()
# The Back Market fixtures: one line (accepted, state 2), two lines (both waiting, state 1).
SINGLE_LINE = 98765432  # listing IP13-128-BLK-A, quantity 1
TWO_LINES = (98765501, 98765502)  # IP13-128-BLK-A and SGS22-128-GRN-B, quantity 1 each


def tag(sku: str, imei: str) -> str:
    return f"{sku}:IMEI{imei}"


def shopify_order(**kwargs: Any) -> dict[str, Any]:
    """An orders/fulfilled body (see `support.shopify.order_payload`) to change before parsing."""
    return order_payload(**kwargs)


def evaluate(
    payload: dict[str, Any],
    policy: ExportPolicy = POLICY,
    overrides: Overrides = NO_OVERRIDES,
) -> Ignore | Block | ReadyToExport:
    order = parse_order(payload)
    return evaluate_order(order, order.fulfillments, policy, overrides)


def ready(
    payload: dict[str, Any],
    policy: ExportPolicy = POLICY,
    overrides: Overrides = NO_OVERRIDES,
) -> ReadyToExport:
    decision = evaluate(payload, policy, overrides)
    assert isinstance(decision, ReadyToExport), decision
    return decision


def bm_order(name: str, **changes: Any) -> BackMarketOrder:
    """A Back Market fixture; `changes` set order fields, `lines` a list of per-line changes."""
    data = backmarket.fixture(name)
    for index, line_changes in enumerate(changes.pop("lines", [])):
        data["orderlines"][index].update(line_changes)
    data.update(changes)
    return BackMarketOrder.model_validate(data)


def plan(
    decision: ReadyToExport,
    order: BackMarketOrder,
    policy: ExportPolicy = POLICY,
    overrides: Overrides = NO_OVERRIDES,
    *,
    already_shipped_by_us: bool = False,
) -> Block | ExportPlan:
    return plan_export(
        decision, order, policy, overrides, already_shipped_by_us=already_shipped_by_us, now=NOW
    )


def codes(decision: object) -> list[str]:
    assert isinstance(decision, Block), decision
    return sorted(str(p.code) for p in decision.problems)


def two_line_shopify(**kwargs: Any) -> dict[str, Any]:
    """A Shopify order whose SKUs are the listings of `order__two_lines`, IMEI-tagged."""
    return shopify_order(
        lines=[("IP13-128-BLK-A", 1), ("SGS22-128-GRN-B", 1)],
        imeis=[tag("IP13-128-BLK-A", I1), tag("SGS22-128-GRN-B", I2)],
        backmarket_order_id=81_234_612,
        **kwargs,
    )


# --- evaluate_order: orders that are not ours, or not ready --------------------------------------


def _cancelled() -> dict[str, Any]:
    payload = shopify_order(imeis=[tag("IP13-128-BLK", I1)])
    payload["cancelled_at"] = BASE_TIME.isoformat()
    return payload


def _partly_fulfilled() -> dict[str, Any]:
    payload = shopify_order(lines=[("IP13-128-BLK", 2)], imeis=[tag("IP13-128-BLK", I1)])
    payload["fulfillment_status"] = "partial"
    payload["line_items"][0]["fulfillment_status"] = "partial"
    payload["fulfillments"][0]["line_items"][0]["quantity"] = 1
    return payload


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        pytest.param(
            shopify_order(backmarket_order_id=None, imeis=[tag("IP13-128-BLK", I1)]),
            "not a Back Market order",
            id="no-backmarket-id",
        ),
        pytest.param(
            # Not ours, however wrong its tags: such orders are never blocked.
            shopify_order(backmarket_order_id=None, imeis=["IP13-128-BLK:IMEI123"]),
            "not a Back Market order",
            id="not-ours-with-broken-imei-tag",
        ),
        pytest.param(_cancelled(), "cancelled", id="cancelled"),
        pytest.param(
            shopify_order(fulfilled=False, imeis=[tag("IP13-128-BLK", I1)]),
            "not every unit is fulfilled",
            id="unfulfilled",
        ),
        pytest.param(_partly_fulfilled(), "not every unit is fulfilled", id="partly-fulfilled"),
    ],
)
def test_orders_that_are_ignored(payload: dict[str, Any], reason: str) -> None:
    decision = evaluate(payload)

    assert isinstance(decision, Ignore)
    assert reason in decision.reason


def _no_fulfillment_record() -> dict[str, Any]:
    # Shopify says fulfilled, but no fulfillment (hence no tracking) came with the order.
    payload = shopify_order(imeis=[tag("IP13-128-BLK", I1)])
    payload["fulfillments"] = []
    return payload


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        pytest.param(
            shopify_order(imeis=[tag("IP13-128-BLK", I1)], tracking_number=None),
            [E.NO_TRACKING],
            id="no-tracking-number",
        ),
        pytest.param(
            shopify_order(imeis=[tag("IP13-128-BLK", I1)], tracking_number="   "),
            [E.NO_TRACKING],
            id="blank-tracking-number",
        ),
        pytest.param(_no_fulfillment_record(), [E.NO_TRACKING], id="no-fulfillment-record"),
        pytest.param(shopify_order(imeis=[]), [ProblemCode.MISSING_IMEI], id="missing-imei"),
        pytest.param(
            shopify_order(imeis=[tag("IP13-128-BLK", "356938035643808")]),
            [ProblemCode.IMEI_BAD_CHECK_DIGIT, ProblemCode.MISSING_IMEI],
            id="bad-check-digit",
        ),
        pytest.param(
            shopify_order(imeis=[tag("IP13-128-BLAK", I1)]),
            [ProblemCode.MISSING_IMEI, ProblemCode.UNKNOWN_SKU],
            id="sku-typo",
        ),
        pytest.param(
            shopify_order(imeis=[], tracking_number=None),
            [ProblemCode.MISSING_IMEI, E.NO_TRACKING],
            id="every-problem-at-once",
        ),
    ],
)
def test_shopify_side_problems_block(payload: dict[str, Any], expected: list[str]) -> None:
    assert codes(evaluate(payload)) == sorted(expected)


@pytest.mark.parametrize(
    ("policy", "overrides", "expected"),
    [
        pytest.param(POLICY, NO_OVERRIDES, [ProblemCode.MISSING_IMEI], id="default-blocks"),
        pytest.param(ExportPolicy(ship_without_imei=True), NO_OVERRIDES, [], id="shop-policy"),
        pytest.param(POLICY, Overrides(ship_without_imei=True), [], id="order-override"),
        pytest.param(
            ExportPolicy(exempt_skus=frozenset({"ip13-128-blk"})), NO_OVERRIDES, [], id="exempt"
        ),
    ],
)
def test_a_missing_imei_is_waived_by_policy_override_or_exemption(
    policy: ExportPolicy, overrides: Overrides, expected: list[str]
) -> None:
    decision = evaluate(shopify_order(imeis=[]), policy, overrides)

    if expected:
        assert codes(decision) == expected
    else:
        assert isinstance(decision, ReadyToExport)
        assert decision.imeis == ()


def test_shop_policy_still_sends_the_imeis_it_has_and_blocks_malformed_tags() -> None:
    lines = [("IP13-128-BLK", 1), ("SGS22-128-GRN", 1)]
    policy = ExportPolicy(ship_without_imei=True)

    partial = ready(shopify_order(lines=lines, imeis=[tag("IP13-128-BLK", I1)]), policy)
    assert partial.send_imeis
    assert partial.imeis_by_sku == {"ip13-128-blk": (I1,)}

    # A typed IMEI that is wrong is never dropped silently: the merchant meant to send one.
    broken = evaluate(shopify_order(imeis=[tag("IP13-128-BLK", "356938035643808")]), policy)
    assert codes(broken) == [ProblemCode.IMEI_BAD_CHECK_DIGIT]


def test_order_override_sends_no_imei_at_all_even_with_broken_tags() -> None:
    payload = shopify_order(imeis=[tag("IP13-128-BLK", "356938035643808"), "IP13:IMEI"])

    decision = ready(payload, overrides=Overrides(ship_without_imei=True))

    assert not decision.send_imeis
    assert decision.imeis_by_sku == {}
    assert decision.imeis == ()


def test_override_does_not_waive_the_tracking_number() -> None:
    payload = shopify_order(imeis=[], tracking_number=None)

    decision = evaluate(payload, overrides=Overrides(ship_without_imei=True))

    assert codes(decision) == [E.NO_TRACKING]


def test_ready_export_carries_id_tracking_and_imeis_by_case_folded_sku() -> None:
    payload = shopify_order(
        lines=[("IP13-128-BLK", 2), ("SGS22-128-GRN", 1)],
        imeis=[tag("ip13-128-blk", I1), tag("SGS22-128-GRN", I3), tag("IP13-128-BLK", I2)],
    )

    decision = ready(payload)

    assert decision.backmarket_order_id == 81_234_567
    assert decision.imeis_by_sku == {"ip13-128-blk": (I1, I2), "sgs22-128-grn": (I3,)}
    assert sorted(decision.imeis) == sorted([I1, I2, I3])
    assert decision.tracking.number == "6A12345678901"
    assert decision.tracking.company == "Colissimo"
    assert decision.tracking.shipped_at == BASE_TIME


def test_backmarket_id_from_the_shops_own_tag_prefix() -> None:
    payload = shopify_order(
        backmarket_order_id=None, imeis=[tag("IP13-128-BLK", I1)], extra_tags=["backmarket-99"]
    )
    policy = ExportPolicy(tag_prefix="backmarket-")

    assert isinstance(evaluate(payload), Ignore)
    assert ready(payload, policy).backmarket_order_id == 99


# --- reused IMEIs ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("elsewhere", "overrides", "expected"),
    [
        pytest.param({}, NO_OVERRIDES, [], id="never-exported"),
        pytest.param({I1: "#1001"}, NO_OVERRIDES, [(I1, "#1001")], id="exported-before"),
        pytest.param({I3: "#1001"}, NO_OVERRIDES, [], id="another-imei-exported"),
        pytest.param(
            {I1: "#1001", I2: "#1002", I3: "#1003"},
            NO_OVERRIDES,
            [(I1, "#1001"), (I2, "#1002")],
            id="several",
        ),
        pytest.param({I1: "#1001"}, Overrides(allow_reused_imeis=True), [], id="allowed"),
    ],
)
def test_reused_imei_problems(
    elsewhere: dict[str, str], overrides: Overrides, expected: list[tuple[str, str]]
) -> None:
    decision = ready(
        shopify_order(
            lines=[("IP13-128-BLK", 2)], imeis=[tag("IP13-128-BLK", I1), tag("IP13-128-BLK", I2)]
        )
    )

    problems = reused_imei_problems(decision, elsewhere, overrides)

    assert [(p.imei, p.code) for p in problems] == [
        (i, E.IMEI_ALREADY_EXPORTED) for i, _ in expected
    ]
    for problem, (_, other) in zip(problems, expected, strict=True):
        assert other in problem.message


# --- plan_export: what Back Market's view of the order blocks ----------------------------------


@pytest.mark.parametrize("state", [0, 8, 10])
def test_backmarket_orders_that_must_not_ship(state: int) -> None:
    decision = ready(shopify_order(imeis=[tag("IP13-128-BLK", I1)]))

    assert codes(plan(decision, bm_order("order__single_line", state=state))) == [
        E.BACKMARKET_ORDER_NOT_SHIPPABLE
    ]


@pytest.mark.parametrize("state", [1, 3])
def test_backmarket_orders_that_may_ship(state: int) -> None:
    decision = ready(shopify_order(imeis=[tag("IP13-128-BLK", I1)]))

    assert isinstance(plan(decision, bm_order("order__single_line", state=state)), ExportPlan)


@pytest.mark.parametrize("line_state", [4, 5, 6, 7])
def test_cancelled_or_refunded_backmarket_lines_block(line_state: int) -> None:
    decision = ready(two_line_shopify())
    order = bm_order("order__two_lines", lines=[{}, {"state": line_state}])

    result = plan(decision, order)

    assert E.BACKMARKET_LINE_CANCELLED in codes(result)
    assert isinstance(result, Block)
    assert {p.sku for p in result.problems if p.code == E.BACKMARKET_LINE_CANCELLED} == {
        "SGS22-128-GRN-B"
    }


def _quantity_two_shopify(imeis: int = 2) -> dict[str, Any]:
    return shopify_order(
        lines=[("IPSE3-64-WHT-B", 2)],
        imeis=[tag("IPSE3-64-WHT-B", i) for i in (I1, I2)[:imeis]],
        backmarket_order_id=81_234_698,
    )


@pytest.mark.parametrize(
    ("policy", "overrides", "blocked"),
    [
        pytest.param(POLICY, NO_OVERRIDES, True, id="no-waiver"),
        pytest.param(ExportPolicy(ship_without_imei=True), NO_OVERRIDES, False, id="shop-policy"),
        pytest.param(POLICY, Overrides(ship_without_imei=True), False, id="order-override"),
        pytest.param(
            ExportPolicy(exempt_skus=frozenset({"IPSE3-64-WHT-B"})),
            NO_OVERRIDES,
            False,
            id="exempt",
        ),
    ],
)
def test_backmarket_line_of_quantity_two_cannot_carry_imeis(
    policy: ExportPolicy, overrides: Overrides, blocked: bool
) -> None:
    decision = ready(_quantity_two_shopify(), policy, overrides)

    result = plan(decision, bm_order("order__quantity_two"), policy, overrides)

    if blocked:
        assert codes(result) == [E.BACKMARKET_LINE_QUANTITY]
    else:
        assert isinstance(result, ExportPlan)
        assert result.imeis_by_line == {}
        assert result.ship is not None
        assert result.ship.imei is None


@pytest.mark.parametrize(
    ("shopify_lines", "bm_lines", "assigned"),
    [
        pytest.param(
            [("IP13-128-BLK", 1)],
            [{"listing": "IP13-128-BLK-A"}],
            {SINGLE_LINE: I1},
            id="one-line-each-side-skus-differ",
        ),
        pytest.param(
            [("ip13-128-blk-a", 1)],
            [{"listing": "IP13-128-BLK-A"}],
            {SINGLE_LINE: I1},
            id="same-sku-other-case",
        ),
        pytest.param(
            [("IP13-128-BLK", 1)],
            [{"listing": None}],
            {SINGLE_LINE: I1},
            id="one-line-each-side-no-listing",
        ),
    ],
)
def test_one_line_each_side_pairs_whatever_the_skus(
    shopify_lines: list[tuple[str, int]], bm_lines: list[dict[str, Any]], assigned: dict[int, str]
) -> None:
    sku = shopify_lines[0][0]
    decision = ready(shopify_order(lines=shopify_lines, imeis=[tag(sku, I1)]))

    result = plan(decision, bm_order("order__single_line", lines=bm_lines))

    assert isinstance(result, ExportPlan)
    assert result.imeis_by_line == assigned


@pytest.mark.parametrize(
    ("shopify_lines", "imeis"),
    [
        pytest.param(
            [("IP13-128-BLK-A", 1), ("SGS22-128-GRN-X", 1)],
            [tag("IP13-128-BLK-A", I1), tag("SGS22-128-GRN-X", I2)],
            id="second-sku-differs",
        ),
        pytest.param(
            [("IP13-128-BLK-A", 1), ("CASE-13", 1)],
            [tag("IP13-128-BLK-A", I1)],
            id="second-line-exempt-in-shopify-only",
        ),
        pytest.param(
            [("IP13-128-BLK", 2)],
            [tag("IP13-128-BLK", I1), tag("IP13-128-BLK", I2)],
            id="one-shopify-sku-two-listings",
        ),
    ],
)
def test_backmarket_line_whose_sku_is_on_no_shopify_line_blocks(
    shopify_lines: list[tuple[str, int]], imeis: list[str]
) -> None:
    policy = ExportPolicy(exempt_skus=frozenset({"CASE-13"}))
    decision = ready(
        shopify_order(lines=shopify_lines, imeis=imeis, backmarket_order_id=81_234_612), policy
    )

    result = plan(decision, bm_order("order__two_lines"), policy)

    assert E.BACKMARKET_LINE_UNMATCHED in codes(result)


def test_backmarket_listing_without_shopify_unit_left_blocks() -> None:
    # Back Market has two phones of the listing, Shopify shipped (and tagged) one.
    decision = ready(
        shopify_order(
            lines=[("IP13-128-BLK-A", 1)],
            imeis=[tag("IP13-128-BLK-A", I1)],
            backmarket_order_id=81_234_612,
        )
    )
    order = bm_order("order__two_lines", lines=[{}, {"listing": "IP13-128-BLK-A"}])

    result = plan(decision, order)

    assert codes(result) == [E.BACKMARKET_LINE_UNMATCHED]


def test_unmatched_listing_is_waived_with_the_imeis() -> None:
    policy = ExportPolicy(ship_without_imei=True)
    decision = ready(
        shopify_order(
            lines=[("IP13-128-BLK-A", 1), ("SGS22-128-GRN-X", 1)],
            imeis=[tag("IP13-128-BLK-A", I1)],
            backmarket_order_id=81_234_612,
        ),
        policy,
    )

    result = plan(decision, bm_order("order__two_lines"), policy)

    assert isinstance(result, ExportPlan)
    assert result.imeis_by_line == {TWO_LINES[0]: I1}


@pytest.mark.parametrize(
    ("registered", "expected"),
    [
        pytest.param("", [], id="none-registered"),
        pytest.param(None, [], id="null-registered"),
        pytest.param(I1, [], id="same-imei-registered"),
        pytest.param(f" {I1} ", [], id="same-imei-with-blanks"),
        pytest.param(I2, [E.BACKMARKET_IMEI_CONFLICT], id="another-imei-registered"),
    ],
)
def test_imei_already_registered_at_backmarket(registered: str | None, expected: list[str]) -> None:
    decision = ready(shopify_order(imeis=[tag("IP13-128-BLK", I1)]))
    order = bm_order("order__single_line", lines=[{"imei": registered}])

    result = plan(decision, order)

    if expected:
        assert codes(result) == expected
        assert isinstance(result, Block)
        assert result.problems[0].imei == I1
        assert I2 in result.problems[0].message
    else:
        assert isinstance(result, ExportPlan)
        assert result.imeis_by_line == {SINGLE_LINE: I1}


def test_conflict_is_not_checked_when_no_imei_is_sent() -> None:
    decision = ready(
        shopify_order(imeis=[tag("IP13-128-BLK", I1)]), overrides=Overrides(ship_without_imei=True)
    )
    order = bm_order("order__single_line", lines=[{"imei": I2}])

    result = plan(decision, order, overrides=Overrides(ship_without_imei=True))

    assert isinstance(result, ExportPlan)
    assert result.imeis_by_line == {}


@pytest.mark.parametrize(
    ("line_states", "accept_orders", "expected"),
    [
        pytest.param((1, 1), True, ("IP13-128-BLK-A", "SGS22-128-GRN-B"), id="both-waiting"),
        pytest.param((2, 1), True, ("SGS22-128-GRN-B",), id="one-waiting"),
        pytest.param((2, 2), True, (), id="both-accepted"),
        pytest.param((2, 2), False, (), id="accepted-setting-off"),
        pytest.param((1, 2), False, E.BACKMARKET_LINE_NOT_ACCEPTED, id="waiting-setting-off"),
    ],
)
def test_lines_awaiting_acceptance(
    line_states: tuple[int, int], accept_orders: bool, expected: tuple[str, ...] | str
) -> None:
    policy = ExportPolicy(accept_orders=accept_orders)
    decision = ready(two_line_shopify(), policy)
    order = bm_order("order__two_lines", lines=[{"state": s} for s in line_states])

    result = plan(decision, order, policy)

    if isinstance(expected, str):
        assert codes(result) == [expected]
    else:
        assert isinstance(result, ExportPlan)
        assert result.accept_skus == expected


def test_accepting_is_one_call_per_sku() -> None:
    decision = ready(
        shopify_order(
            lines=[("IP13-128-BLK-A", 2)],
            imeis=[tag("IP13-128-BLK-A", I1), tag("IP13-128-BLK-A", I2)],
            backmarket_order_id=81_234_612,
        )
    )
    order = bm_order("order__two_lines", lines=[{}, {"listing": "IP13-128-BLK-A"}])

    result = plan(decision, order)

    assert isinstance(result, ExportPlan)
    assert result.accept_skus == ("IP13-128-BLK-A",)
    assert result.imeis_by_line == {TWO_LINES[0]: I1, TWO_LINES[1]: I2}


# --- plan_export: the calls -------------------------------------------------------------------


def test_single_line_of_one_sends_the_imei_inline() -> None:
    decision = ready(shopify_order(imeis=[tag("IP13-128-BLK", I1)]))

    result = plan(decision, bm_order("order__single_line"))

    assert isinstance(result, ExportPlan)
    assert result.accept_skus == ()
    assert result.imeis_by_line == {SINGLE_LINE: I1}
    assert result.ship is not None
    assert result.ship.imei == I1
    assert result.ship.tracking_number == "6A12345678901"
    assert result.ship.shipper == "Colissimo"


def test_several_lines_send_no_inline_imei_but_one_per_line() -> None:
    decision = ready(two_line_shopify())

    result = plan(decision, bm_order("order__two_lines"))

    assert isinstance(result, ExportPlan)
    assert result.ship is not None
    assert result.ship.imei is None
    assert result.imeis_by_line == {TWO_LINES[0]: I1, TWO_LINES[1]: I2}


@pytest.mark.parametrize(
    ("fixture", "already_shipped_by_us"),
    [
        pytest.param("order__shipped", False, id="backmarket-shows-shipped"),
        pytest.param("order__single_line", True, id="we-shipped-it-before"),
    ],
)
def test_already_shipped_means_no_second_ship_call(
    fixture: str, already_shipped_by_us: bool
) -> None:
    decision = ready(shopify_order(imeis=[tag("IP13-128-BLK", I1)]))

    result = plan(decision, bm_order(fixture), already_shipped_by_us=already_shipped_by_us)

    assert isinstance(result, ExportPlan)
    assert result.ship is None
    assert result.accept_skus == ()
    assert result.imeis_by_line == {SINGLE_LINE: I1}  # still owed to lines that lack it


def test_every_line_shipped_counts_as_shipped_whatever_the_order_state() -> None:
    decision = ready(two_line_shopify())
    order = bm_order("order__two_lines", state=3, lines=[{"state": 3}, {"state": 3}])

    result = plan(decision, order, ExportPolicy(accept_orders=False))

    assert isinstance(result, ExportPlan)
    assert result.ship is None


@pytest.mark.parametrize(
    ("company", "shipper"),
    [
        pytest.param("Colissimo", "Colissimo", id="backmarket-name"),
        pytest.param("La Poste", "Colissimo", id="shopify-alias"),
        pytest.param("dhl paket", "DHL DE", id="alias-any-case"),
        pytest.param("Evri", "Hermes - UK", id="renamed-carrier"),
        pytest.param("Carrier Pigeon Ltd", "Other", id="unknown"),
        pytest.param(None, "Other", id="none"),
    ],
)
def test_carrier_is_mapped_to_a_backmarket_shipper(company: str | None, shipper: str) -> None:
    decision = ready(shopify_order(imeis=[tag("IP13-128-BLK", I1)], tracking_company=company))

    result = plan(decision, bm_order("order__single_line"))

    assert isinstance(result, ExportPlan)
    assert result.ship is not None
    assert result.ship.shipper == shipper


def test_shipping_date_and_url_come_from_the_fulfillment() -> None:
    payload = shopify_order(imeis=[tag("IP13-128-BLK", I1)])
    payload["fulfillments"][0]["tracking_url"] = "https://track.example/6A12345678901"

    result = plan(ready(payload), bm_order("order__single_line"))

    assert isinstance(result, ExportPlan)
    assert result.ship is not None
    assert result.ship.date_shipping == BASE_TIME
    assert result.ship.tracking_url == "https://track.example/6A12345678901"
    assert result.ship.model_dump(exclude_none=True)["date_shipping"] == "2026-03-10T15:00:00Z"


def test_shipping_date_is_now_when_the_fulfillment_has_none() -> None:
    payload = shopify_order(imeis=[tag("IP13-128-BLK", I1)])
    payload["fulfillments"][0]["created_at"] = None

    result = plan(ready(payload), bm_order("order__single_line"))

    assert isinstance(result, ExportPlan)
    assert result.ship is not None
    assert result.ship.date_shipping == NOW


# --- imei_patches_due ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("registered", "done", "expected"),
    [
        pytest.param(("", ""), [], [(TWO_LINES[0], I1), (TWO_LINES[1], I2)], id="none-yet"),
        pytest.param(("", ""), [TWO_LINES[0]], [(TWO_LINES[1], I2)], id="one-recorded-done"),
        pytest.param((I1, None), [], [(TWO_LINES[1], I2)], id="one-registered"),
        pytest.param((I1, I2), [], [], id="both-registered"),
        pytest.param(("", ""), list(TWO_LINES), [], id="both-done"),
    ],
)
def test_imei_patches_due(
    registered: tuple[str | None, str | None], done: list[int], expected: list[tuple[int, str]]
) -> None:
    order = bm_order("order__two_lines", state=9, lines=[{"imei": r} for r in registered])

    due = imei_patches_due(order, {TWO_LINES[0]: I1, TWO_LINES[1]: I2}, done)

    assert due == expected
