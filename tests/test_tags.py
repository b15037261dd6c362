"""The IMEI tag grammar: `SKU:IMEI<15 digits>`, one order tag per shipped unit."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st
from stdnum import imei as stdnum_imei
from stdnum import luhn

from shopify_bm.tags import (
    MAX_SKU_LENGTH,
    MAX_TAG_LENGTH,
    ImeiTag,
    Problem,
    ProblemCode,
    format_tag,
    is_imei_tag,
    parse_tag,
    parse_tags,
    quote,
    split_tags,
)

IMEI = "356938035643809"
OTHER_IMEI = "490154203237518"
LEADING_ZERO_IMEI = "013327001465717"
BAD_LUHN_IMEI = "356938035643808"  # IMEI with its last digit mistyped
# The same digits typed on a CJK keyboard: full-width, which str.isdigit() accepts.
FULL_WIDTH_IMEI = "３５６９３８０３５６４３８０９"  # noqa: RUF001


def make_imei(body: str) -> str:
    """A valid IMEI from its first 14 digits."""
    return body + luhn.calc_check_digit(body)


def test_example_imeis_are_what_the_tests_claim() -> None:
    for value in (IMEI, OTHER_IMEI, LEADING_ZERO_IMEI):
        assert stdnum_imei.is_valid(value), value
    assert not stdnum_imei.is_valid(BAD_LUHN_IMEI)


def names_tag(problem: Problem, tag: str) -> bool:
    """True when the problem's message shows the tag the way a worker sees it."""
    return quote(tag) in problem.message


# --- splitting ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tags", "expected"),
    [
        pytest.param("vip, gift", ["vip", "gift"], id="rest-comma-space"),
        pytest.param("vip,gift", ["vip", "gift"], id="comma-without-space"),
        pytest.param("  vip ,\tgift\n", ["vip", "gift"], id="outer-blanks-trimmed"),
        pytest.param(" , ,, vip,, ", ["vip"], id="empty-pieces-dropped"),
        pytest.param("", [], id="empty-string"),
        pytest.param(None, [], id="none"),
        pytest.param(["vip", "gift, wrap"], ["vip", "gift", "wrap"], id="graphql-list"),
        pytest.param(["  "], [], id="graphql-blank-item"),
        pytest.param("Back Market", ["Back Market"], id="inner-space-kept"),
    ],
)
def test_split_tags_trims_and_drops_empty_pieces(
    tags: str | list[str] | None, expected: list[str]
) -> None:
    assert split_tags(tags) == expected


# --- recognising IMEI tags ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("tag", "expected"),
    [
        pytest.param(f"SKU123:IMEI{IMEI}", True, id="canonical"),
        pytest.param(f"sku123:imei{IMEI}", True, id="lower-case-marker"),
        pytest.param(f"SKU123:ImEi{IMEI}", True, id="mixed-case-marker"),
        pytest.param("SKU123:IMEI", True, id="marker-without-value"),
        pytest.param(":imei", True, id="marker-alone"),
        pytest.param(f"SKU123: IMEI{IMEI}", True, id="blank-after-colon"),
        pytest.param(f"SKU123:\tImei {IMEI}", True, id="tab-after-colon"),
        pytest.param(f"SKU1:\u0131me\u0131{IMEI}", True, id="turkish-dotless-i"),
        pytest.param(f"SKU123IMEI{IMEI}", False, id="no-colon"),
        pytest.param(f"IMEI{IMEI}", False, id="imei-prefix-only"),
        pytest.param("BackMarket", False, id="ordinary-tag"),
        pytest.param("imei pending", False, id="word-imei"),
    ],
)
def test_is_imei_tag_looks_for_the_colon_imei_marker_in_any_case(tag: str, expected: bool) -> None:
    assert is_imei_tag(tag) is expected


def test_parse_tags_passes_other_tags_through_untouched() -> None:
    parsed = parse_tags(f"BackMarket, vip, SKU1:IMEI{IMEI}, Gift wrap, {'x' * 300}")

    assert parsed.other_tags == ("BackMarket", "vip", "Gift wrap", "x" * 300)
    assert parsed.imei_tags == (ImeiTag(f"SKU1:IMEI{IMEI}", "SKU1", IMEI),)
    assert parsed.problems == ()


def test_parse_tags_accepts_a_graphql_list() -> None:
    parsed = parse_tags(["vip", f"A1:IMEI{IMEI}", f"B2:IMEI{OTHER_IMEI}"])

    assert [(t.sku, t.imei) for t in parsed.imei_tags] == [("A1", IMEI), ("B2", OTHER_IMEI)]
    assert parsed.other_tags == ("vip",)


# --- valid tags -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tag", "sku", "imei"),
    [
        pytest.param(f"SKU123:IMEI{IMEI}", "SKU123", IMEI, id="canonical"),
        pytest.param(f"iph13-128:imei{IMEI}", "iph13-128", IMEI, id="lower-case"),
        pytest.param(
            f"PIX7:IMEI{LEADING_ZERO_IMEI}", "PIX7", LEADING_ZERO_IMEI, id="leading-zero-kept"
        ),
        pytest.param(f"{'S' * 20}:IMEI{IMEI}", "S" * 20, IMEI, id="longest-sku-40-chars"),
        pytest.param(f"A:IMEIB:IMEI{IMEI}", "A:IMEIB", IMEI, id="sku-before-last-marker"),
        pytest.param(f"Écran-ß:IMEI{IMEI}", "Écran-ß", IMEI, id="non-ascii-sku"),
        pytest.param(f"X.Y/Z_1:IMEI{IMEI}", "X.Y/Z_1", IMEI, id="punctuation-in-sku"),
    ],
)
def test_parse_tag_accepts_a_well_formed_tag(tag: str, sku: str, imei: str) -> None:
    assert len(tag) <= MAX_TAG_LENGTH
    assert parse_tag(tag) == ImeiTag(tag=tag, sku=sku, imei=imei)


# --- every rule, one row per defect ------------------------------------------------------

C = ProblemCode

INVALID_TAGS = [
    pytest.param(
        f"ABCDEFGHIJKLMNOPQRSTU:IMEI{IMEI}",
        {C.SKU_TOO_LONG, C.TAG_TOO_LONG},
        id="sku-21-chars",
    ),
    pytest.param(
        f"SKU:IMEI{IMEI}{IMEI}{IMEI}", {C.TAG_TOO_LONG, C.IMEI_WRONG_LENGTH}, id="tag-too-long"
    ),
    pytest.param(f"SKU 123:IMEI{IMEI}", {C.TAG_HAS_WHITESPACE}, id="space-in-sku"),
    pytest.param(f"SKU123:IMEI {IMEI}", {C.TAG_HAS_WHITESPACE}, id="space-before-imei"),
    pytest.param(f"SKU123 :IMEI{IMEI}", {C.TAG_HAS_WHITESPACE}, id="space-before-marker"),
    pytest.param(f"SKU123: IMEI{IMEI}", {C.TAG_HAS_WHITESPACE}, id="space-after-colon"),
    pytest.param("SKU123:IMEI3569\t38035643809", {C.TAG_HAS_WHITESPACE}, id="tab"),
    pytest.param(f"SKU\u00a0123:IMEI{IMEI}", {C.TAG_HAS_WHITESPACE}, id="no-break-space"),
    pytest.param("SKU123:IMEI35693803\n5643809", {C.TAG_HAS_WHITESPACE}, id="line-break"),
    pytest.param(f":IMEI{IMEI}", {C.SKU_MISSING}, id="sku-missing"),
    pytest.param("SKU123:IMEI", {C.IMEI_MISSING}, id="imei-missing"),
    pytest.param(":imei", {C.SKU_MISSING, C.IMEI_MISSING}, id="marker-alone"),
    pytest.param("SKU123:IMEI35693803564380X", {C.IMEI_NOT_DIGITS}, id="letter-in-imei"),
    pytest.param("SKU123:IMEI35-693803-564380-9", {C.IMEI_NOT_DIGITS}, id="dashes-in-imei"),
    pytest.param(f"SKU123:IMEI{FULL_WIDTH_IMEI}", {C.IMEI_NOT_DIGITS}, id="full-width-digits"),
    pytest.param(
        "SKU123:IMEI٣٥٦٩٣٨٠٣٥٦٤٣٨٠٩",  # noqa: RUF001
        {C.IMEI_NOT_DIGITS},
        id="arabic-indic-digits",
    ),
    pytest.param("SKU123:IMEI35693803564380", {C.IMEI_WRONG_LENGTH}, id="14-digits"),
    pytest.param("SKU123:IMEI3569380356438091", {C.IMEI_WRONG_LENGTH}, id="16-digits-imeisv"),
    pytest.param("SKU123:IMEI3", {C.IMEI_WRONG_LENGTH}, id="1-digit"),
    pytest.param(f"SKU123:IMEI{BAD_LUHN_IMEI}", {C.IMEI_BAD_CHECK_DIGIT}, id="bad-luhn"),
    pytest.param("SKU123:IMEI000000000000001", {C.IMEI_BAD_CHECK_DIGIT}, id="bad-luhn-zeros"),
    pytest.param(
        f" SKU 1 :IMEI {BAD_LUHN_IMEI}",
        {C.TAG_HAS_WHITESPACE, C.IMEI_BAD_CHECK_DIGIT},
        id="every-defect-reported",
    ),
]


@pytest.mark.parametrize(("tag", "codes"), INVALID_TAGS)
def test_parse_tag_reports_every_defect_by_code_naming_the_tag(
    tag: str, codes: set[ProblemCode]
) -> None:
    result = parse_tag(tag)

    assert isinstance(result, list), f"{tag!r} was accepted"
    assert {p.code for p in result} == codes
    for problem in result:
        assert problem.tag == tag
        assert problem.blocking
        assert names_tag(problem, tag), problem.message
        assert "\n" not in problem.message


@pytest.mark.parametrize(("tag", "codes"), INVALID_TAGS)
def test_parse_tags_reports_malformed_tags_and_keeps_none_of_them(
    tag: str, codes: set[ProblemCode]
) -> None:
    parsed = parse_tags(f"vip, {tag}, SKU9:IMEI{OTHER_IMEI}")
    stripped = tag.strip()

    assert {p.code for p in parsed.problems} == codes
    assert all(p.tag == stripped for p in parsed.problems)
    assert parsed.imei_tags == (ImeiTag(f"SKU9:IMEI{OTHER_IMEI}", "SKU9", OTHER_IMEI),)
    assert parsed.other_tags == ("vip",)


@pytest.mark.parametrize(
    ("tag", "words"),
    [
        pytest.param(f"SKU123:IMEI{BAD_LUHN_IMEI}", [BAD_LUHN_IMEI, "mistyped"], id="bad-luhn"),
        pytest.param("SKU123:IMEI35693803564380", ["14 digits", "exactly 15"], id="14-digits"),
        pytest.param("SKU123:IMEI3", ["1 digit;", "exactly 15"], id="1-digit-singular"),
        pytest.param(f"SKU123:IMEI{FULL_WIDTH_IMEI}", ["0-9", "full-width"], id="full-width"),
        pytest.param(f"{'S' * 21}:IMEI{IMEI}", ["21 characters", "20"], id="sku-too-long"),
        pytest.param(f"SKU 1:IMEI{IMEI}", ["space", "SKU123:IMEI"], id="whitespace"),
        pytest.param(f":IMEI{IMEI}", ["no SKU", "SKU123:IMEI"], id="sku-missing"),
        pytest.param("SKU1:IMEI", ["no IMEI", "15 digits"], id="imei-missing"),
    ],
)
def test_problem_messages_say_what_to_fix(tag: str, words: list[str]) -> None:
    result = parse_tag(tag)

    assert isinstance(result, list)
    text = " ".join(p.message for p in result)
    for word in words:
        assert word in text


def test_problem_message_shows_invisible_characters_escaped() -> None:
    tag = f"SKU\u00a01:IMEI{IMEI}"

    result = parse_tag(tag)

    assert isinstance(result, list)
    assert "“SKU\\xa01:IMEI" in result[0].message


# --- monsters: a clear message, never an exception ----------------------------------------


def test_a_tag_of_10000_characters_gets_a_short_clear_message() -> None:
    tag = "A" * (10_000 - len(f":IMEI{IMEI}")) + f":IMEI{IMEI}"
    assert len(tag) == 10_000

    parsed = parse_tags(f"vip, {tag}")

    codes = {p.code for p in parsed.problems}
    assert codes == {C.TAG_TOO_LONG, C.SKU_TOO_LONG}
    too_long = next(p for p in parsed.problems if p.code == C.TAG_TOO_LONG)
    assert "10000 characters" in too_long.message
    assert too_long.message.startswith(f"Tag “{'A' * 20}")
    assert all(len(p.message) < 300 for p in parsed.problems)
    assert parsed.imei_tags == ()


def test_an_ordinary_tag_of_10000_characters_is_not_ours() -> None:
    parsed = parse_tags("x" * 10_000)

    assert parsed.problems == ()
    assert parsed.other_tags == ("x" * 10_000,)


def test_full_width_digits_are_refused_with_a_clear_message() -> None:
    tag = f"SKU123:IMEI{FULL_WIDTH_IMEI}"

    parsed = parse_tags(tag)

    assert [p.code for p in parsed.problems] == [C.IMEI_NOT_DIGITS]
    assert tag in parsed.problems[0].message
    assert "full-width" in parsed.problems[0].message


def test_a_tags_string_with_500_tags_is_parsed_in_full() -> None:
    imeis = [make_imei(f"35693803{n:06d}") for n in range(500)]
    tags = ", ".join(format_tag(f"SKU{n % 7}", imei) for n, imei in enumerate(imeis))

    parsed = parse_tags(tags)

    assert parsed.problems == ()
    assert [t.imei for t in parsed.imei_tags] == imeis
    assert [t.sku for t in parsed.imei_tags] == [f"SKU{n % 7}" for n in range(500)]


def test_500_malformed_tags_each_get_their_own_problem() -> None:
    tags = ", ".join(f"SKU{n}:IMEI{n}" for n in range(500))

    parsed = parse_tags(tags)

    assert len(parsed.problems) == 500
    assert {p.code for p in parsed.problems} == {C.IMEI_WRONG_LENGTH}
    assert [p.tag for p in parsed.problems] == [f"SKU{n}:IMEI{n}" for n in range(500)]


# --- small pieces ------------------------------------------------------------------------------


def test_quote_shortens_long_text_and_says_how_long_it_was() -> None:
    assert quote("SKU1") == "“SKU1”"
    shortened = quote("B" * 500)
    assert shortened.startswith("“" + "B" * 50)
    assert shortened.endswith("… (500 characters)”")
    assert len(shortened) < 100


def test_format_tag_writes_the_canonical_form() -> None:
    assert format_tag("SKU123", IMEI) == f"SKU123:IMEI{IMEI}"


def test_problem_as_dict_holds_only_the_fields_that_are_set() -> None:
    problem = Problem(C.IMEI_MISSING, "msg", tag="SKU1:IMEI")

    assert problem.as_dict() == {
        "code": "imei_missing",
        "message": "msg",
        "tag": "SKU1:IMEI",
        "blocking": True,
    }


def test_problem_codes_are_stable_strings() -> None:
    assert {c.value for c in ProblemCode} >= {
        "tag_too_long",
        "tag_has_whitespace",
        "sku_missing",
        "sku_too_long",
        "imei_missing",
        "imei_not_digits",
        "imei_wrong_length",
        "imei_bad_check_digit",
        "missing_imei",
        "unknown_sku",
        "too_many_imeis",
        "duplicate_imei",
        "line_without_sku",
        "line_sku_too_long",
    }


# --- properties -----------------------------------------------------------------------------

# Text biased towards the grammar's edges: markers, digits of several scripts, blanks, commas.
tag_soup = st.lists(
    st.one_of(
        st.sampled_from(
            [":IMEI", ":imei", ":ImEi", ":\u0131me\u0131", ",", " ", "\t", "\n", "\u00a0", "\ud800"]
        ),
        st.sampled_from([IMEI, BAD_LUHN_IMEI, FULL_WIDTH_IMEI, "0", "SKU123", "٣"]),
        st.text(max_size=30),
    ),
    max_size=12,
).map("".join)


@given(st.one_of(st.text(), tag_soup))
def test_parse_tags_never_raises_and_every_result_obeys_the_rules(tags: str) -> None:
    parsed = parse_tags(tags)

    for tag in parsed.imei_tags:
        assert 1 <= len(tag.sku) <= MAX_SKU_LENGTH
        assert len(tag.tag) <= MAX_TAG_LENGTH
        assert len(tag.imei) == 15
        assert tag.imei.isascii()
        assert tag.imei.isdigit()
        assert stdnum_imei.is_valid(tag.imei)
        assert tag.tag.startswith(tag.sku)
        assert tag.tag.endswith(tag.imei)
        assert re.fullmatch(":imei", tag.tag[len(tag.sku) : -len(tag.imei)], re.IGNORECASE)
    for problem in parsed.problems:
        assert problem.tag is not None
        assert names_tag(problem, problem.tag)
        assert "\n" not in problem.message
    pieces = split_tags(tags)
    seen = len(parsed.other_tags) + len(parsed.imei_tags) + len({p.tag for p in parsed.problems})
    assert seen <= len(pieces)


skus = st.text(
    alphabet=st.characters(exclude_categories=("Z", "C"), exclude_characters=","),
    min_size=1,
    max_size=MAX_SKU_LENGTH,
)
imeis = st.from_regex(r"[0-9]{14}", fullmatch=True).map(make_imei)


@given(skus, imeis)
def test_every_valid_tag_round_trips(sku: str, imei: str) -> None:
    tag = format_tag(sku, imei)

    assert parse_tag(tag) == ImeiTag(tag=tag, sku=sku, imei=imei)
    parsed = parse_tags(f"vip, {tag}")
    assert parsed.imei_tags == (ImeiTag(tag=tag, sku=sku, imei=imei),)
    assert parsed.problems == ()


@given(st.lists(st.tuples(skus, imeis), min_size=1, max_size=20))
def test_many_valid_tags_round_trip_in_order(units: list[tuple[str, str]]) -> None:
    tags = ", ".join(format_tag(sku, imei) for sku, imei in units)

    parsed = parse_tags(tags)

    assert parsed.problems == ()
    assert [(t.sku, t.imei) for t in parsed.imei_tags] == units
