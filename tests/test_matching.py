"""Assigning the IMEIs of an order's tags to the units of its line items."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from stdnum import imei as stdnum_imei
from stdnum import luhn

from shopify_bm.matching import LineItem, MatchingPolicy, MatchResult, match_order
from shopify_bm.tags import ProblemCode, format_tag, parse_tags, quote

C = ProblemCode
I1, I2, I3, I4 = "356938035643809", "490154203237518", "352099001761481", "353918050543210"
BAD_LUHN = "356938035643808"


def make_imei(body: str) -> str:
    """A valid IMEI from its first 14 digits."""
    return body + luhn.calc_check_digit(body)


def test_example_imeis_are_valid() -> None:
    assert all(stdnum_imei.is_valid(i) for i in (I1, I2, I3, I4))


def line(line_id: int, sku: str | None, units: int = 1, title: str = "") -> LineItem:
    return LineItem(id=line_id, sku=sku, units=units, title=title)


def codes(result: MatchResult) -> list[ProblemCode]:
    return sorted(ProblemCode(p.code) for p in result.problems)


# --- exportable orders ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("lines", "tags", "expected"),
    [
        pytest.param([line(1, "IP13")], f"IP13:IMEI{I1}", {1: (I1,)}, id="one-unit"),
        pytest.param(
            [line(1, "IP13"), line(2, "S21", 2)],
            f"vip, S21:IMEI{I2}, IP13:IMEI{I1}, S21:IMEI{I3}",
            {1: (I1,), 2: (I2, I3)},
            id="two-lines-tag-order-kept",
        ),
        pytest.param([line(1, "Ip13-Mid")], f"iP13-mID:imei{I1}", {1: (I1,)}, id="sku-any-case"),
        pytest.param([line(1, "  IP13 ")], f"IP13:IMEI{I1}", {1: (I1,)}, id="line-sku-trimmed"),
        pytest.param(
            [line(1, "IP13", 2), line(2, "IP13", 1)],
            f"IP13:IMEI{I1}, IP13:IMEI{I2}, IP13:IMEI{I3}",
            {1: (I1, I2), 2: (I3,)},
            id="same-sku-on-two-lines-filled-in-order",
        ),
        pytest.param(
            [line(1, "IP13"), line(2, "CASE", 0)],
            f"IP13:IMEI{I1}",
            {1: (I1,), 2: ()},
            id="line-removed-by-edit-needs-nothing",
        ),
        pytest.param([], "", {}, id="no-lines-no-tags"),
        pytest.param([line(1, "IP13:IMEI")], f"IP13:IMEI:IMEI{I1}", {1: (I1,)}, id="odd-sku"),
    ],
)
def test_match_order_assigns_one_imei_per_unit(
    lines: list[LineItem], tags: str, expected: dict[int, tuple[str, ...]]
) -> None:
    result = match_order(lines, tags)

    assert result.problems == ()
    assert result.exportable
    assert {entry.line_item_id: entry.imeis for entry in result.lines} == expected
    for line_id, imeis in expected.items():
        assert result.imeis_of(line_id) == imeis


def test_match_order_accepts_tags_already_parsed() -> None:
    parsed = parse_tags(f"IP13:IMEI{I1}")

    result = match_order([line(1, "IP13")], parsed)

    assert result.imeis_of(1) == (I1,)


# --- every reason to block, one row each -----------------------------------------------------


@pytest.mark.parametrize(
    ("lines", "tags", "expected_codes", "named"),
    [
        pytest.param(
            [line(1, "S21", 2, "Galaxy S21")],
            f"S21:IMEI{I1}",
            [C.MISSING_IMEI],
            ["“Galaxy S21”", "“S21”", "2 units", "1 IMEI tag;", "S21:IMEI<15 digits>"],
            id="unit-without-imei",
        ),
        pytest.param(
            [line(7, "S21")],
            "",
            [C.MISSING_IMEI],
            ["line 7", "no IMEI tag"],
            id="no-tags-at-all-untitled-line",
        ),
        pytest.param(
            [line(1, "IP13-128-MID")],
            f"IP13-128-MDI:IMEI{I1}",
            [C.MISSING_IMEI, C.UNKNOWN_SKU],
            [quote(f"IP13-128-MDI:IMEI{I1}"), "“IP13-128-MDI”", "not on this order"],
            id="sku-typo",
        ),
        pytest.param(
            [line(1, "IP13")],
            f"IP13:IMEI{I1}, IP13:IMEI{I2}",
            [C.TOO_MANY_IMEIS],
            [quote(f"IP13:IMEI{I2}"), "2 IMEI tags", "only 1 unit", "extra tag "],
            id="more-imeis-than-units",
        ),
        pytest.param(
            [line(1, "IP13", 0)],
            f"IP13:IMEI{I1}",
            [C.TOO_MANY_IMEIS],
            [quote(f"IP13:IMEI{I1}"), "1 IMEI tag ", "only 0 units"],
            id="imei-for-a-removed-unit",
        ),
        pytest.param(
            [line(1, "IP13"), line(2, "S21")],
            f"IP13:IMEI{I1}, S21:IMEI{I1}",
            [C.DUPLICATE_IMEI, C.MISSING_IMEI, C.MISSING_IMEI],
            [quote(f"IP13:IMEI{I1}"), quote(f"S21:IMEI{I1}"), I1, "2 times"],
            id="same-imei-on-two-units",
        ),
        pytest.param(
            [line(1, None, 1, "Coque silicone")],
            "",
            [C.LINE_WITHOUT_SKU],
            ["“Coque silicone”", "no SKU"],
            id="line-sku-null",
        ),
        pytest.param(
            [line(1, "   ")], "", [C.LINE_WITHOUT_SKU], ["line 1", "no SKU"], id="line-sku-blank"
        ),
        pytest.param(
            [line(1, "APPLE-IPHONE13-128-MIDNIGHT")],
            "",
            [C.LINE_SKU_TOO_LONG],
            ["“APPLE-IPHONE13-128-MIDNIGHT”", "27 characters", "at most 20"],
            id="line-sku-too-long",
        ),
        pytest.param(
            [line(1, "IP13 128")],
            "",
            [C.LINE_SKU_UNTAGGABLE],
            ["“IP13 128”", "space or a comma"],
            id="line-sku-with-space",
        ),
        pytest.param(
            [line(1, "IP13,128")],
            "",
            [C.LINE_SKU_UNTAGGABLE],
            ["“IP13,128”", "space or a comma"],
            id="line-sku-with-comma",
        ),
        pytest.param(
            [line(1, "IP13")],
            f"IP13:IMEI{BAD_LUHN}",
            [C.IMEI_BAD_CHECK_DIGIT, C.MISSING_IMEI],
            [quote(f"IP13:IMEI{BAD_LUHN}"), BAD_LUHN],
            id="malformed-tag",
        ),
    ],
)
def test_match_order_blocks_with_a_problem_per_reason(
    lines: list[LineItem], tags: str, expected_codes: list[ProblemCode], named: list[str]
) -> None:
    result = match_order(lines, tags)

    assert not result.exportable
    assert codes(result) == sorted(expected_codes)
    text = " ".join(p.message for p in result.problems)
    for words in named:
        assert words in text
    assert result.blocking_problems == result.problems
    assert all("\n" not in p.message for p in result.problems)


def test_problems_carry_the_fields_the_api_reports() -> None:
    result = match_order(
        [line(11, "IP13"), line(12, None)],
        f"XX9:IMEI{I1}, IP13:IMEI{I2}, IP13:IMEI{I3}",
    )

    by_code = {p.code: p for p in result.problems}
    assert by_code[C.UNKNOWN_SKU].tag == f"XX9:IMEI{I1}"
    assert by_code[C.UNKNOWN_SKU].sku == "XX9"
    assert by_code[C.UNKNOWN_SKU].imei == I1
    assert by_code[C.TOO_MANY_IMEIS].sku == "IP13"
    assert by_code[C.LINE_WITHOUT_SKU].line_item_id == 12
    assert result.imeis_of(11) == (I2,)


def test_a_duplicated_imei_is_assigned_to_no_unit() -> None:
    result = match_order([line(1, "IP13", 2)], f"IP13:IMEI{I1}, ip13:imei{I1}")

    assert result.imeis_of(1) == ()
    assert codes(result) == [C.DUPLICATE_IMEI, C.MISSING_IMEI]


def test_lines_sharing_an_id_do_not_share_imeis() -> None:
    result = match_order([line(5, "A"), line(5, "B")], f"A:IMEI{I1}, B:IMEI{I2}")

    assert [entry.imeis for entry in result.lines] == [(I1,), (I2,)]
    assert result.exportable


# --- the merchant's settings ------------------------------------------------------------------


def test_ship_without_imei_turns_missing_imeis_into_warnings() -> None:
    lines = [line(1, "IP13", 2), line(2, None), line(3, "A" * 21), line(4, "A B")]
    policy = MatchingPolicy(ship_without_imei=True)

    result = match_order(lines, f"IP13:IMEI{I1}", policy)

    assert result.exportable
    assert codes(result) == sorted(
        [C.MISSING_IMEI, C.LINE_WITHOUT_SKU, C.LINE_SKU_TOO_LONG, C.LINE_SKU_UNTAGGABLE]
    )
    assert not any(p.blocking for p in result.problems)
    assert result.as_dict()["exportable"] is True


def test_ship_without_imei_still_blocks_wrong_tags() -> None:
    policy = MatchingPolicy(ship_without_imei=True)
    tags = f"IP13:IMEI{BAD_LUHN}, XX:IMEI{I2}, IP13:IMEI{I3}, IP13:IMEI{I4}"

    result = match_order([line(1, "IP13")], tags, policy)

    assert not result.exportable
    assert [ProblemCode(p.code) for p in result.blocking_problems] == [
        C.IMEI_BAD_CHECK_DIGIT,
        C.UNKNOWN_SKU,
        C.TOO_MANY_IMEIS,
    ]


def test_ship_without_imei_is_off_by_default() -> None:
    assert MatchingPolicy().ship_without_imei is False
    assert not match_order([line(1, "IP13")], "").exportable


@pytest.mark.parametrize(
    "exempt",
    [
        pytest.param("CASE-01", id="same-case"),
        pytest.param("case-01", id="other-case"),
        pytest.param(" CASE-01 ", id="padded"),
    ],
)
def test_exempt_skus_need_no_imei(exempt: str) -> None:
    policy = MatchingPolicy(exempt_skus=frozenset({exempt}))

    result = match_order([line(1, "IP13"), line(2, "CASE-01", 3)], f"IP13:IMEI{I1}", policy)

    assert result.exportable
    assert result.problems == ()
    assert result.imeis_of(2) == ()


def test_exempt_skus_do_not_exempt_other_lines() -> None:
    policy = MatchingPolicy(exempt_skus=frozenset({"CASE-01"}))

    result = match_order([line(1, "IP13"), line(2, "CASE-01")], "", policy)

    assert codes(result) == [C.MISSING_IMEI]
    assert result.problems[0].line_item_id == 1


# --- the JSON shape ------------------------------------------------------------------------------


def test_match_result_as_dict_is_the_check_json_shape() -> None:
    result = match_order([line(14512345678901, "IP13", 2)], f"IP13:IMEI{I1}")

    assert result.as_dict() == {
        "exportable": False,
        "lines": [
            {"line_item_id": 14512345678901, "sku": "IP13", "quantity": 2, "imeis": [I1]},
        ],
        "problems": [
            {
                "code": "missing_imei",
                "message": result.problems[0].message,
                "sku": "IP13",
                "line_item_id": 14512345678901,
                "blocking": True,
            }
        ],
    }


# --- properties ---------------------------------------------------------------------------

small_skus = st.sampled_from(["IP13", "ip13", "S21", "PIX7", "", " ", "A B", "X" * 21])
line_items = st.builds(
    LineItem,
    id=st.integers(min_value=-(2**63), max_value=2**63),
    sku=st.one_of(st.none(), small_skus, st.text(max_size=25)),
    units=st.integers(min_value=-3, max_value=5),
    title=st.text(max_size=10),
)
imeis = st.one_of(
    st.sampled_from([I1, I2, I3, I4, BAD_LUHN]),
    st.from_regex(r"[0-9]{14}", fullmatch=True).map(make_imei),
    st.text(max_size=16),
)
tag_strings = st.lists(
    st.one_of(
        st.builds(format_tag, st.one_of(small_skus, st.text(max_size=22)), imeis),
        st.text(max_size=20),
    ),
    max_size=12,
).map(", ".join)
policies = st.builds(
    MatchingPolicy,
    ship_without_imei=st.booleans(),
    exempt_skus=st.frozensets(small_skus, max_size=2),
)


@settings(max_examples=300)
@given(st.lists(line_items, max_size=6), st.one_of(st.text(), tag_strings), policies)
def test_match_order_never_raises_and_never_overfills(
    lines: list[LineItem], tags: str, policy: MatchingPolicy
) -> None:
    result = match_order(lines, tags, policy)

    assert [entry.line_item_id for entry in result.lines] == [li.id for li in lines]
    assigned = [imei for entry in result.lines for imei in entry.imeis]
    assert len(assigned) == len(set(assigned))
    valid_tags = {(t.sku.casefold(), t.imei) for t in parse_tags(tags).imei_tags}
    for li, entry in zip(lines, result.lines, strict=True):
        assert entry.quantity == li.units
        assert len(entry.imeis) <= max(li.units, 0)
        sku = (li.sku or "").strip().casefold()
        assert all((sku, imei) in valid_tags for imei in entry.imeis)
    assert result.exportable == (not result.blocking_problems)
    if parse_tags(tags).problems:
        assert not result.exportable
    assert all(p.message and "\n" not in p.message for p in result.problems)


@given(
    st.lists(
        st.tuples(st.sampled_from(["IP13", "S21", "PIX7", "CASE", "SE22"]), st.integers(0, 3)),
        max_size=5,
        unique_by=lambda pair: pair[0],
    ),
    st.randoms(use_true_random=False),
)
def test_an_order_tagged_once_per_unit_exports(
    skus_units: list[tuple[str, int]], rng: random.Random
) -> None:
    serial = iter(range(10**6))
    lines = [line(100 + n, sku, units) for n, (sku, units) in enumerate(skus_units)]
    wanted = {
        entry.id: [make_imei(f"35{next(serial):012d}") for _ in range(entry.units)]
        for entry in lines
    }
    tags = [
        format_tag(entry.sku.lower() if n % 2 else entry.sku, imei)
        for entry in lines
        for n, imei in enumerate(wanted[entry.id])
        if entry.sku
    ]
    rng.shuffle(tags)

    result = match_order(lines, ", ".join(tags))

    assert result.exportable
    assert result.problems == ()
    for entry in lines:
        assert sorted(result.imeis_of(entry.id)) == sorted(wanted[entry.id])
