"""`shopify-bm exports …` as an operator runs it: the runtime comes from the environment."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from conftest import TEST_SHOP
from shopify_bm.cli import main
from shopify_bm.models import ExportAttempt, ExportStatus
from shopify_bm.runtime import Runtime
from support.jobs import NOW, add_job, job_of, shop_id

S = ExportStatus
OTHER_SHOP = "other-refurb.myshopify.com"
A_1042, A_1043, B_1042 = 5_612_345_678_901, 5_612_345_678_902, 7_000_000_000_001
PROBLEM = {
    "code": "missing_imei",
    "message": "Line “Phone IP13” ships 1 unit but has no IMEI tag.",
    "blocking": True,
}


@pytest.fixture
def seeded(runtime: Runtime) -> Runtime:
    """A blocked #1042 with one attempt and a failed #1043 in one shop, an exported #1042 in
    another."""
    with runtime.db.transaction() as session:
        a, b = shop_id(session, TEST_SHOP), shop_id(session, OTHER_SHOP)
        blocked = add_job(
            session,
            a,
            A_1042,
            S.BLOCKED,
            order_name="#1042",
            backmarket_order_id=81_234_567,
            reason_code="missing_imei",
            last_error=PROBLEM["message"],
            problems=[PROBLEM],
            updated_at=NOW + timedelta(minutes=1),
        )
        session.add(
            ExportAttempt(
                job_id=blocked.id,
                worker="w1",
                started_at=NOW,
                finished_at=NOW,
                outcome="blocked",
                detail="missing_imei",
            )
        )
        add_job(
            session,
            a,
            A_1043,
            S.FAILED,
            order_name="#1043",
            backmarket_order_id=81_234_568,
            last_error="Back Market refused the tracking number (400).",
            updated_at=NOW + timedelta(minutes=3),
        )
        add_job(
            session,
            b,
            B_1042,
            S.EXPORTED,
            order_name="#1042",
            backmarket_order_id=99_999_999,
            exported_at=NOW,
            shipment={"tracking_number": "6A1", "imei": "356938035643809"},
            updated_at=NOW + timedelta(minutes=2),
        )
    return runtime


@pytest.fixture
def cli(seeded: Runtime, tmp_path: Path) -> Any:
    """Runs `shopify-bm exports …` with only the environment pointing at the test database."""
    # The key the fixtures loaded (`conftest.ENCRYPTION_KEY` imported here would be another
    # module's), so the process-wide keyring the CLI configures stays as the other tests expect.
    key = seeded.settings.encryption_key
    assert key is not None
    environment = {
        "DATABASE_URL": seeded.settings.resolved_database_url,
        "SHOPIFY_BM_ENCRYPTION_KEY": key.get_secret_value(),
        "SHOPIFY_BM_INSTANCE_PATH": str(tmp_path / "cli-instance"),
        "SHOPIFY_SHOP": None,  # whatever the machine's environment says
    }

    def run(*args: str) -> Result:
        return CliRunner().invoke(main, ["exports", *args], env=environment)

    return run


def one_line_error(result: Result) -> str:
    assert result.exit_code == 1, result.output
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("shopify-bm exports: ")
    return lines[0]


# --- list ----------------------------------------------------------------------------------------


def test_list_for_people(cli: Any) -> None:
    result = cli("list")

    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["ORDER", "STATUS", "BM", "ORDER", "SHOP", "REASON"]
    assert [line.split()[:4] for line in lines[1:]] == [
        ["#1043", "failed", "81234568", TEST_SHOP],
        ["#1042", "exported", "99999999", OTHER_SHOP],
        ["#1042", "blocked", "81234567", TEST_SHOP],
    ]
    assert "no IMEI tag" in lines[3]


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        pytest.param([], [A_1043, B_1042, A_1042], id="all"),
        pytest.param(["--status", "blocked"], [A_1042], id="status"),
        pytest.param(["--status", "blocked", "--status", "failed"], [A_1043, A_1042], id="two"),
        pytest.param(["--shop", OTHER_SHOP], [B_1042], id="shop"),
        pytest.param(["--limit", "1"], [A_1043], id="limit"),
        pytest.param(["--status", "pending"], [], id="none"),
    ],
)
def test_list_as_json(cli: Any, args: list[str], expected: list[int]) -> None:
    result = cli("list", "--json", *args)

    assert result.exit_code == 0, result.output
    listed = json.loads(result.stdout)
    assert [row["shopify_order_id"] for row in listed] == expected


def test_list_json_rows_are_complete(cli: Any) -> None:
    row = json.loads(cli("list", "--json", "--shop", OTHER_SHOP).stdout)[0]

    assert row["order"] == "#1042"
    assert row["status"] == "exported"
    assert row["exported_at"] == NOW.isoformat()
    assert row["shipment"] == {"tracking_number": "6A1", "imei": "356938035643809"}


def test_list_without_exports(cli: Any) -> None:
    result = cli("list", "--status", "running")

    assert (result.exit_code, result.stdout) == (0, "no exports\n")


def test_list_refuses_an_unknown_status(cli: Any) -> None:
    result = cli("list", "--status", "shipped")

    assert result.exit_code == 2
    assert "shipped" in result.stderr


# --- show ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "ref", ["#1043", "1043", str(A_1043), "81234568"], ids=["name", "number", "shopify", "bm"]
)
def test_show_finds_an_order_by_any_reference(cli: Any, ref: str) -> None:
    result = cli("show", ref)

    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[:3] == [
        f"Order #1043 (Shopify {A_1043}, Back Market 81234568) in {TEST_SHOP}",
        "Status: failed",
        "Reason: Back Market refused the tracking number (400).",
    ]


def test_show_for_people_lists_problems_and_attempts(cli: Any) -> None:
    result = cli("show", "#1042", "--shop", TEST_SHOP)

    assert result.exit_code == 0, result.output
    text = result.stdout
    assert "Status: blocked" in text
    assert f"  - {PROBLEM['message']} [missing_imei]" in text
    assert "Attempts (newest first):\n  2026-03-10 15:00:00 blocked   missing_imei" in text


def test_show_as_json(cli: Any) -> None:
    result = cli("show", "1042", "--shop", TEST_SHOP, "--json")

    assert result.exit_code == 0, result.output
    shown = json.loads(result.stdout)
    assert (shown["order"], shown["status"], shown["reason_code"]) == (
        "#1042",
        "blocked",
        "missing_imei",
    )
    assert shown["problems"] == [PROBLEM]
    assert shown["attempts_log"] == [
        {
            "started_at": NOW.isoformat(),
            "finished_at": NOW.isoformat(),
            "outcome": "blocked",
            "detail": "missing_imei",
            "worker": "w1",
        }
    ]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        pytest.param(["show", "#9999"], "no export for order '#9999'", id="unknown"),
        pytest.param(["show", "1042"], "several shops: pass --shop", id="ambiguous"),
        pytest.param(["show", "9" * 30], "no export for order", id="huge-number"),
        pytest.param(["retry", "#9999"], "no export for order '#9999'", id="retry-unknown"),
        pytest.param(["retry", "#1042"], "several shops: pass --shop", id="retry-ambiguous"),
        pytest.param(
            ["retry", "1042", "--shop", OTHER_SHOP], "already exported", id="retry-exported"
        ),
        pytest.param(
            ["ship-without-imei", "99999999"], "#1042 is already exported", id="override-exported"
        ),
        pytest.param(["allow-reused-imei", "#9999", "--json"], "no export", id="json-too"),
    ],
)
def test_errors_exit_1_with_one_line(cli: Any, args: list[str], message: str) -> None:
    assert message in one_line_error(cli(*args))


# --- retry and overrides -------------------------------------------------------------------------


def test_retry_queues_a_blocked_export_now(cli: Any, seeded: Runtime) -> None:
    result = cli("retry", "#1042", "--shop", TEST_SHOP)

    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("queued again:\nOrder #1042 ")
    assert "Status: pending" in result.stdout
    with seeded.db.transaction() as session:
        job = job_of(session, A_1042)
        assert (job.status, job.attempts, job.override_note) == (S.PENDING, 0, None)


def test_retry_refuses_an_exported_order_and_changes_nothing(cli: Any, seeded: Runtime) -> None:
    one_line_error(cli("retry", "99999999"))

    with seeded.db.transaction() as session:
        job = job_of(session, B_1042)
        assert (job.status, job.exported_at) == (S.EXPORTED, NOW)


@pytest.mark.parametrize(
    ("command", "flag", "note"),
    [
        ("ship-without-imei", "ship_without_imei", "cli: ship without IMEI"),
        ("allow-reused-imei", "allow_reused_imeis", "cli: allow reused IMEIs"),
    ],
)
def test_overrides_are_recorded(
    cli: Any, seeded: Runtime, command: str, flag: str, note: str
) -> None:
    result = cli(command, "#1043", "--json")

    assert result.exit_code == 0, result.output
    shown = json.loads(result.stdout)
    assert shown[flag] is True
    assert shown["status"] == "pending"
    assert shown["override_note"].endswith(note)
    with seeded.db.transaction() as session:
        job = job_of(session, A_1043)
        assert getattr(job, flag) is True
        assert job.status == S.PENDING
        assert job.override_note is not None
        assert job.override_note.endswith(note)

    # For people, the override is shown with the export.
    assert f"Overrides:\n  {job.override_note}" in cli("show", "#1043").stdout


def test_both_overrides_accumulate(cli: Any, seeded: Runtime) -> None:
    assert cli("ship-without-imei", "#1043").exit_code == 0
    assert cli("allow-reused-imei", "#1043").exit_code == 0
    assert cli("ship-without-imei", "#1043").exit_code == 0  # already recorded: no new note

    with seeded.db.transaction() as session:
        job = job_of(session, A_1043)
        notes = (job.override_note or "").splitlines()
    assert [n.split(" ", 1)[1] for n in notes] == [
        "cli: ship without IMEI",
        "cli: allow reused IMEIs",
    ]
