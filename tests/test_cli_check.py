"""`shopify-bm check ORDER.json [--json]`: would this orders/fulfilled body export?"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from stdnum import luhn

from shopify_bm.cli import main

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "shopify"
IMEI = "356938035643809"


def fixture_text(name: str) -> str:
    return (FIXTURES / f"{name}.json").read_text(encoding="utf-8")


def fixture(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(fixture_text(name))
    return data


def run_check(*args: str, stdin: str | bytes | None = None) -> Result:
    return CliRunner().invoke(main, ["check", *args], input=stdin)


def check_json(body: dict[str, Any] | str, *options: str) -> tuple[int, dict[str, Any]]:
    """Run `check --json -` on a body; the exit code and the decoded answer."""
    text = body if isinstance(body, str) else json.dumps(body)
    result = run_check("--json", *options, "-", stdin=text)
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert result.stderr == ""
    answer: dict[str, Any] = json.loads(result.stdout)
    return result.exit_code, answer


def codes(answer: dict[str, Any]) -> list[str]:
    return sorted(p["code"] for p in answer["problems"])


def assert_one_line_error(result: Result) -> str:
    """Exit 2, nothing on stdout, one line on stderr, no traceback."""
    assert result.exit_code == 2, result.output
    assert isinstance(result.exception, SystemExit)
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("shopify-bm check: ")
    assert "Traceback" not in result.stderr
    return lines[0]


# --- one test per fixture ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "exit_code", "expected_codes", "imeis"),
    [
        pytest.param(
            "orders_fulfilled__single_line_exportable",
            0,
            [],
            {14512345678901: ["356938035643809"]},
            id="single-line",
        ),
        pytest.param(
            "orders_fulfilled__two_lines_exportable",
            0,
            [],
            {
                14512345678911: ["490154203237518"],
                14512345678912: ["352099001761481", "353918050543210"],
            },
            id="two-lines",
        ),
        pytest.param(
            "orders_fulfilled__qty2_one_imei_missing",
            1,
            ["missing_imei"],
            {14512345678921: ["353305112345679"]},
            id="qty2-one-imei-missing",
        ),
        pytest.param(
            "orders_fulfilled__sku_typo",
            1,
            ["missing_imei", "unknown_sku"],
            {14512345678931: []},
            id="sku-typo",
        ),
        pytest.param(
            "orders_fulfilled__bad_luhn",
            1,
            ["imei_bad_check_digit", "missing_imei"],
            {14512345678941: []},
            id="bad-luhn",
        ),
        pytest.param(
            "orders_fulfilled__quantity_edited_down",
            0,
            [],
            {14512345678951: ["013327001465717"]},
            id="quantity-edited-down",
        ),
        pytest.param(
            "orders_fulfilled__line_without_sku",
            1,
            ["line_without_sku"],
            {14512345678961: ["353305112345679"], 14512345678962: []},
            id="line-without-sku",
        ),
        pytest.param(
            "orders_fulfilled__not_backmarket",
            1,
            ["missing_imei"],
            {14512345678971: []},
            id="not-backmarket",
        ),
        pytest.param(
            "orders_updated__tag_fixed",
            0,
            [],
            {14512345678941: ["352896110520397"]},
            id="tag-fixed",
        ),
    ],
)
def test_check_json_answers_each_fixture(
    name: str, exit_code: int, expected_codes: list[str], imeis: dict[int, list[str]]
) -> None:
    result = run_check("--json", str(FIXTURES / f"{name}.json"))

    assert result.exit_code == exit_code, result.output
    answer = json.loads(result.stdout)
    assert set(answer) == {"exportable", "lines", "problems"}
    assert answer["exportable"] is (exit_code == 0)
    assert codes(answer) == expected_codes
    raw = fixture(name)
    assert [
        {
            "line_item_id": li["id"],
            "sku": li["sku"],
            "quantity": li["current_quantity"],
            "imeis": imeis[li["id"]],
        }
        for li in raw["line_items"]
    ] == answer["lines"]
    for problem in answer["problems"]:
        assert {"code", "message", "blocking"} <= set(problem)
        assert problem["blocking"] is True


def test_check_reports_the_mistyped_tag_by_name() -> None:
    _, answer = check_json(fixture("orders_fulfilled__bad_luhn"))

    bad = next(p for p in answer["problems"] if p["code"] == "imei_bad_check_digit")
    assert bad["tag"] == "PIX7-128-OBS:IMEI352896110520398"
    assert "PIX7-128-OBS:IMEI352896110520398" in bad["message"]
    assert bad["imei"] == "352896110520398"


def test_check_reports_the_unknown_sku_by_name() -> None:
    _, answer = check_json(fixture("orders_fulfilled__sku_typo"))

    unknown = next(p for p in answer["problems"] if p["code"] == "unknown_sku")
    assert unknown["sku"] == "IP13-128-MDI"
    assert "IP13-128-MDI:IMEI356889107742138" in unknown["message"]


def test_check_counts_units_after_an_order_edit() -> None:
    raw = fixture("orders_fulfilled__quantity_edited_down")
    del raw["line_items"][0]["current_quantity"]

    exit_code, answer = check_json(raw)

    assert exit_code == 1
    assert codes(answer) == ["missing_imei"]
    assert answer["lines"][0]["quantity"] == 2


# --- human output and options -------------------------------------------------------------------


def test_check_text_output_says_it_would_export() -> None:
    result = run_check(str(FIXTURES / "orders_fulfilled__two_lines_exportable.json"))

    assert result.exit_code == 0
    assert result.stdout.startswith("Order #1043 (id 5812345678902): would export")
    assert "IMEIs: 352099001761481, 353918050543210" in result.stdout
    assert "blocked" not in result.stdout


def test_check_text_output_lists_why_it_is_blocked() -> None:
    result = run_check(str(FIXTURES / "orders_fulfilled__sku_typo.json"))

    assert result.exit_code == 1
    assert "BLOCKED: would not export" in result.stdout
    assert "Why it is blocked:" in result.stdout
    assert "[unknown_sku]" in result.stdout
    assert "“IP13-128-MDI:IMEI356889107742138”" in result.stdout
    assert result.stderr == ""


def test_check_reads_stdin_for_a_dash() -> None:
    result = run_check("-", stdin=fixture_text("orders_fulfilled__single_line_exportable"))

    assert result.exit_code == 0
    assert "would export" in result.stdout


def test_ship_without_imei_turns_the_block_into_a_warning() -> None:
    body = fixture("orders_fulfilled__line_without_sku")

    exit_code, answer = check_json(body, "--ship-without-imei")

    assert exit_code == 0
    assert answer["exportable"] is True
    assert [(p["code"], p["blocking"]) for p in answer["problems"]] == [("line_without_sku", False)]
    text = run_check("--ship-without-imei", "-", stdin=json.dumps(body))
    assert "Warnings (shipped anyway under the shop's settings):" in text.stdout


@pytest.mark.parametrize("sku", ["CHG-USBC-20W", "chg-usbc-20w"])
def test_exempt_sku_needs_no_imei(sku: str) -> None:
    exit_code, answer = check_json(fixture("orders_fulfilled__not_backmarket"), "--exempt-sku", sku)

    assert exit_code == 0
    assert answer["problems"] == []


def test_exempt_sku_is_repeatable() -> None:
    body = fixture("orders_fulfilled__line_without_sku")
    body["line_items"][1]["sku"] = "CASE-SIL"
    body["tags"] = ""

    exit_code, _ = check_json(body, "--exempt-sku", "CASE-SIL")
    assert exit_code == 1
    exit_code, _ = check_json(body, "--exempt-sku", "CASE-SIL", "--exempt-sku", "IP13-128-MID")
    assert exit_code == 0


# --- hostile input: a clear message, never a traceback --------------------------------------------


def make_imei(body: str) -> str:
    return body + luhn.calc_check_digit(body)


def test_a_tag_of_10000_characters_blocks_with_a_short_message() -> None:
    body = fixture("orders_fulfilled__single_line_exportable")
    monster = "IP13-128-MID" + "X" * (10_000 - len(f"IP13-128-MID:IMEI{IMEI}")) + f":IMEI{IMEI}"
    body["tags"] = f"BackMarket, {monster}"

    exit_code, answer = check_json(body)

    assert exit_code == 1
    assert codes(answer) == ["missing_imei", "sku_too_long", "tag_too_long"]
    too_long = next(p for p in answer["problems"] if p["code"] == "tag_too_long")
    assert too_long["tag"] == monster
    assert "10000 characters" in too_long["message"]
    assert len(too_long["message"]) < 300


def test_full_width_digits_block_with_a_clear_message() -> None:
    body = fixture("orders_fulfilled__single_line_exportable")
    full_width = "".join(chr(0xFF10 + int(d)) for d in IMEI)
    body["tags"] = f"IP13-128-MID:IMEI{full_width}"

    exit_code, answer = check_json(body)

    assert exit_code == 1
    assert codes(answer) == ["imei_not_digits", "missing_imei"]
    problem = next(p for p in answer["problems"] if p["code"] == "imei_not_digits")
    assert f"IP13-128-MID:IMEI{full_width}" in problem["message"]
    assert "full-width" in problem["message"]


def test_a_tags_string_with_500_tags_is_checked_in_full() -> None:
    body = fixture("orders_fulfilled__single_line_exportable")
    body["line_items"][0]["quantity"] = body["line_items"][0]["current_quantity"] = 500
    imeis = [make_imei(f"35693803{n:06d}") for n in range(500)]
    body["tags"] = ", ".join(f"IP13-128-MID:IMEI{i}" for i in imeis)

    exit_code, answer = check_json(body)

    assert exit_code == 0
    assert answer["lines"][0]["imeis"] == imeis


def test_500_tags_for_one_unit_name_the_surplus() -> None:
    body = fixture("orders_fulfilled__single_line_exportable")
    imeis = [make_imei(f"35693803{n:06d}") for n in range(500)]
    body["tags"] = ", ".join(f"IP13-128-MID:IMEI{i}" for i in imeis)

    exit_code, answer = check_json(body)

    assert exit_code == 1
    (problem,) = answer["problems"]
    assert problem["code"] == "too_many_imeis"
    assert "500 IMEI tags but only 1 unit" in problem["message"]
    assert f"IP13-128-MID:IMEI{imeis[-1]}" in problem["message"]


def test_broken_unicode_in_the_input_is_shown_escaped() -> None:
    # "\ud800" is legal JSON but no character: it cannot be printed as UTF-8.
    text = fixture_text("orders_fulfilled__single_line_exportable").replace(
        '"BackMarket, ', '"BackMarket, SKU\\ud800:IMEI1, ', 1
    )

    exit_code, answer = check_json(text)

    assert exit_code == 1
    problem = next(p for p in answer["problems"] if p["code"] == "imei_wrong_length")
    assert problem["tag"] == "SKU\ud800:IMEI1"
    assert "SKU\\ud800:IMEI1" in problem["message"]
    result = run_check("-", stdin=text)
    assert result.exit_code == 1
    assert "“SKU\\ud800:IMEI1”" in result.stdout


BAD_INPUTS = [
    pytest.param(
        json.dumps([fixture("orders_fulfilled__single_line_exportable")]),
        "expected a JSON object (an order), got an array",
        id="json-array",
    ),
    pytest.param(
        json.dumps(
            {k: v for k, v in fixture("orders_fulfilled__sku_typo").items() if k != "line_items"}
        ),
        "line_items: Field required",
        id="missing-line-items",
    ),
    pytest.param('"#1042"', "got a string", id="json-string"),
    pytest.param("null", "got null", id="json-null"),
    pytest.param("", "the input is empty", id="empty"),
    pytest.param(" \n", "the input is empty", id="blank"),
    pytest.param('{"id": 1, "line_items": [', "not valid JSON", id="truncated-json"),
    pytest.param("id,line_items\n1,2\n", "not valid JSON", id="csv"),
    pytest.param(b'{"id": "\xff"}', "cannot read the input as text (utf-8", id="not-utf8"),
    pytest.param(b"\x00\x01garbage", "cannot read the input as text (utf-16-be", id="odd-bytes"),
    pytest.param('{"id": 1' + "0" * 5000 + ', "line_items": []}', "not valid JSON", id="huge-int"),
    pytest.param("[" * 100_000 + "]" * 100_000, "nested too deeply", id="deep-nesting"),
    pytest.param(
        fixture_text("fulfillments_create__basic"),
        "this is a Fulfillment, not an Order",
        id="fulfillment-body",
    ),
    pytest.param(
        '{"id": 1, "line_items": [{"id": 2, "quantity": -1}]}',
        "line_items.0.quantity",
        id="negative-quantity",
    ),
]


@pytest.mark.parametrize(("stdin", "words"), BAD_INPUTS)
def test_check_refuses_what_is_not_an_order_in_one_line(stdin: str | bytes, words: str) -> None:
    result = run_check("--json", "-", stdin=stdin)

    line = assert_one_line_error(result)
    assert words in line
    assert len(line) < 400


def test_check_refuses_a_missing_file_in_one_line(tmp_path: Path) -> None:
    missing = tmp_path / "order.json"

    line = assert_one_line_error(run_check(str(missing)))

    assert line == f"shopify-bm check: cannot read {missing}: No such file or directory"


def test_check_refuses_a_directory_in_one_line(tmp_path: Path) -> None:
    line = assert_one_line_error(run_check(str(tmp_path)))

    assert str(tmp_path) in line


def test_check_refuses_a_json_file_holding_an_array(tmp_path: Path) -> None:
    path = tmp_path / "orders.json"
    path.write_text(f"[{fixture_text('orders_fulfilled__sku_typo')}]", encoding="utf-8")

    line = assert_one_line_error(run_check("--json", str(path)))

    assert line == "shopify-bm check: expected a JSON object (an order), got an array"


def test_check_reads_a_file_on_disk(tmp_path: Path) -> None:
    path = tmp_path / "order.json"
    path.write_text(fixture_text("orders_fulfilled__single_line_exportable"), encoding="utf-8")

    assert run_check("--json", str(path)).exit_code == 0


# --- the real console script -----------------------------------------------------------

SCRIPT = Path(sys.executable).parent / "shopify-bm"


def run_script(
    *args: str, stdin: bytes, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [str(SCRIPT), "check", *args],
        input=stdin,
        capture_output=True,
        timeout=60,
        check=False,
        env=env,
    )


@pytest.mark.slow
def test_console_script_answers_from_stdin() -> None:
    done = run_script(
        "--json", "-", stdin=fixture_text("orders_fulfilled__two_lines_exportable").encode()
    )

    assert done.returncode == 0, done.stderr
    assert done.stderr == b""
    assert json.loads(done.stdout)["exportable"] is True


@pytest.mark.slow
@pytest.mark.parametrize(
    ("stdin", "words"),
    [
        pytest.param(b"[1, 2]", b"got an array", id="json-array"),
        pytest.param(b"\x00\x01garbage", b"cannot read the input as text", id="garbage"),
    ],
)
def test_console_script_refuses_bad_input_in_one_line(stdin: bytes, words: bytes) -> None:
    done = run_script("-", stdin=stdin)

    assert done.returncode == 2
    assert done.stdout == b""
    assert b"Traceback" not in done.stderr
    assert len(done.stderr.splitlines()) == 1, done.stderr
    assert words in done.stderr


@pytest.mark.slow
def test_console_script_survives_a_terminal_that_cannot_show_the_answer() -> None:
    body = fixture("orders_fulfilled__bad_luhn")
    body["tags"] += ", SKU\ud800:IMEI1, Écran:IMEI1"
    stdin = json.dumps(body).encode()  # ASCII with \u escapes, as json.dumps writes it
    env = {**os.environ, "PYTHONIOENCODING": "latin-1"}

    text = run_script("-", stdin=stdin, env=env)
    as_json = run_script("--json", "-", stdin=stdin, env=env)

    assert text.returncode == as_json.returncode == 1
    assert b"Traceback" not in text.stderr + as_json.stderr
    assert b"[imei_bad_check_digit]" in text.stdout
    answer = json.loads(as_json.stdout)
    assert {p["tag"] for p in answer["problems"] if "tag" in p} >= {
        "SKU\ud800:IMEI1",
        "Écran:IMEI1",
    }
