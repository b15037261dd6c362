"""What operators do with exports (shared by the CLI and the admin page), on both databases."""

from __future__ import annotations

from datetime import timedelta

import pytest

from conftest import TEST_SHOP
from shopify_bm.models import ExportAttempt, ExportStatus
from shopify_bm.operations import (
    AmbiguousExportError,
    ExportAlreadyDoneError,
    ExportNotFoundError,
    attempts_of,
    describe_export,
    find_export,
    list_exports,
    retry_export,
)
from shopify_bm.runtime import Runtime
from support.jobs import NOW, add_job, job_of, shop_id

S = ExportStatus
OTHER_SHOP = "other-refurb.myshopify.com"
LATER = NOW + timedelta(hours=2)
# Order 1042 exists in both shops; 1043 only in the first.
A_1042, A_1043, B_1042 = 5_612_345_678_901, 5_612_345_678_902, 7_000_000_000_001


@pytest.fixture
def seeded(runtime: Runtime) -> Runtime:
    """Three exports in two shops, changed at different times."""
    with runtime.db.transaction() as session:
        a, b = shop_id(session, TEST_SHOP), shop_id(session, OTHER_SHOP)
        add_job(
            session,
            a,
            A_1042,
            S.BLOCKED,
            order_name="#1042",
            backmarket_order_id=81_234_567,
            reason_code="missing_imei",
            last_error="Line “Phone” ships 1 unit but has no IMEI tag.",
            problems=[{"code": "missing_imei", "message": "add a tag", "blocking": True}],
            updated_at=NOW + timedelta(minutes=1),
        )
        add_job(
            session,
            a,
            A_1043,
            S.FAILED,
            order_name="#1043",
            backmarket_order_id=81_234_568,
            attempts=3,
            failing_since=NOW - timedelta(hours=1),
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


# --- finding an export --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ref", "shop", "expected"),
    [
        pytest.param("#1043", None, (TEST_SHOP, A_1043), id="name"),
        pytest.param("1043", None, (TEST_SHOP, A_1043), id="number"),
        pytest.param("  #1043 ", None, (TEST_SHOP, A_1043), id="blanks"),
        pytest.param(str(A_1043), None, (TEST_SHOP, A_1043), id="shopify-id"),
        pytest.param("81234568", None, (TEST_SHOP, A_1043), id="backmarket-id"),
        pytest.param("99999999", None, (OTHER_SHOP, B_1042), id="backmarket-id-other-shop"),
        pytest.param("#1042", TEST_SHOP, (TEST_SHOP, A_1042), id="name-in-shop"),
        pytest.param("1042", OTHER_SHOP, (OTHER_SHOP, B_1042), id="number-in-other-shop"),
        pytest.param("#1042", None, AmbiguousExportError, id="ambiguous-across-shops"),
        pytest.param("1042", None, AmbiguousExportError, id="ambiguous-number"),
        pytest.param("#9999", None, ExportNotFoundError, id="unknown"),
        pytest.param("#1043", OTHER_SHOP, ExportNotFoundError, id="not-in-that-shop"),
        pytest.param("", None, ExportNotFoundError, id="empty"),
        pytest.param("IP13", None, ExportNotFoundError, id="not-a-number"),
        pytest.param("9" * 25, None, ExportNotFoundError, id="number-beyond-any-id"),
        pytest.param("\u00b2", None, ExportNotFoundError, id="superscript-digit"),
        pytest.param("\u0661\u0660\u0664\u0663", None, ExportNotFoundError, id="arabic-digits"),
    ],
)
def test_find_export(
    seeded: Runtime, ref: str, shop: str | None, expected: tuple[str, int] | type[Exception]
) -> None:
    with seeded.db.transaction() as session:
        if isinstance(expected, tuple):
            job, domain = find_export(session, ref, shop)
            assert (domain, job.shopify_order_id) == expected
        else:
            with pytest.raises(expected) as raised:
                find_export(session, ref, shop)
            assert "\n" not in str(raised.value)
            if expected is AmbiguousExportError:
                assert "--shop" in str(raised.value)


# --- listing and describing ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("statuses", "shop", "limit", "expected"),
    [
        pytest.param((), None, 200, [A_1043, B_1042, A_1042], id="newest-change-first"),
        pytest.param((S.BLOCKED, S.FAILED), None, 200, [A_1043, A_1042], id="statuses"),
        pytest.param((S.PENDING,), None, 200, [], id="none-in-status"),
        pytest.param((), OTHER_SHOP, 200, [B_1042], id="one-shop"),
        pytest.param((), None, 2, [A_1043, B_1042], id="limit"),
    ],
)
def test_list_exports(
    seeded: Runtime, statuses: tuple[str, ...], shop: str | None, limit: int, expected: list[int]
) -> None:
    with seeded.db.transaction() as session:
        views = list_exports(session, statuses, shop, limit)

    assert [v.shopify_order_id for v in views] == expected


def test_describe_export_shows_status_reasons_and_what_was_sent(seeded: Runtime) -> None:
    with seeded.db.transaction() as session:
        blocked = describe_export(session, "#1042", TEST_SHOP)
        exported = describe_export(session, "99999999")

    assert (blocked.order, blocked.status, blocked.reason_code) == (
        "#1042",
        S.BLOCKED,
        "missing_imei",
    )
    assert blocked.problems == [{"code": "missing_imei", "message": "add a tag", "blocking": True}]
    assert blocked.next_attempt_at is None  # blocked: waits for the merchant, not a time
    assert exported.shipment == {"tracking_number": "6A1", "imei": "356938035643809"}
    assert exported.as_dict()["exported_at"] == NOW.isoformat()
    assert exported.as_dict()["updated_at"] == (NOW + timedelta(minutes=2)).isoformat()


def test_order_without_a_name_is_shown_by_its_id(runtime: Runtime) -> None:
    with runtime.db.transaction() as session:
        add_job(session, shop_id(session, TEST_SHOP), 1234, S.PENDING)
        view = describe_export(session, "1234")

    assert view.order == "1234"
    assert view.next_attempt_at == NOW


def test_attempts_newest_first(seeded: Runtime) -> None:
    with seeded.db.transaction() as session:
        job, _ = find_export(session, "#1043")
        for minute, outcome in enumerate(("retry", "retry", "failed")):
            session.add(
                ExportAttempt(
                    job_id=job.id,
                    worker="w1",
                    started_at=NOW + timedelta(minutes=minute),
                    outcome=outcome,
                    detail=f"run {minute}",
                )
            )
        session.flush()
        attempts = attempts_of(session, "1043")

    assert [(a.outcome, a.detail) for a in attempts] == [
        ("failed", "run 2"),
        ("retry", "run 1"),
        ("retry", "run 0"),
    ]
    assert attempts[0].as_dict()["started_at"] == (NOW + timedelta(minutes=2)).isoformat()


# --- retrying and overriding --------------------------------------------------------------------


@pytest.mark.parametrize("status", [S.BLOCKED, S.FAILED, S.IGNORED, S.RETRY, S.PENDING])
def test_retry_queues_the_export_now(runtime: Runtime, status: str) -> None:
    with runtime.db.transaction() as session:
        shop = shop_id(session, TEST_SHOP)
        add_job(
            session,
            shop,
            A_1042,
            status,
            order_name="#1042",
            run_after=NOW + timedelta(hours=5),
            attempts=4,
            failing_since=NOW - timedelta(hours=3),
        )

    with runtime.db.transaction() as session:
        view = retry_export(session, "#1042", LATER)

    assert (view.status, view.next_attempt_at, view.attempts) == (S.PENDING, LATER, 0)
    with runtime.db.transaction() as session:
        job = job_of(session, A_1042)
        assert (job.status, job.run_after, job.attempts, job.failing_since) == (
            S.PENDING,
            LATER,
            0,
            None,
        )
        assert (job.ship_without_imei, job.allow_reused_imeis, job.override_note) == (
            False,
            False,
            None,
        )


def test_retry_refuses_an_exported_order(seeded: Runtime) -> None:
    with seeded.db.transaction() as session, pytest.raises(ExportAlreadyDoneError) as raised:
        retry_export(session, "1042", LATER, shop=OTHER_SHOP, ship_without_imei=True)

    assert "#1042" in str(raised.value)
    with seeded.db.transaction() as session:
        job = job_of(session, B_1042)
        assert (job.status, job.ship_without_imei, job.override_note) == (S.EXPORTED, False, None)


def test_retry_of_a_running_export_runs_it_again_after(runtime: Runtime) -> None:
    with runtime.db.transaction() as session:
        add_job(
            session,
            shop_id(session, TEST_SHOP),
            A_1042,
            S.RUNNING,
            order_name="#1042",
            locked_by="w1",
            locked_at=NOW,
        )

    with runtime.db.transaction() as session:
        retry_export(session, "#1042", LATER)

    with runtime.db.transaction() as session:
        job = job_of(session, A_1042)
        assert (job.status, job.rerun, job.locked_by, job.run_after) == (
            S.RUNNING,
            True,
            "w1",
            NOW,
        )


def test_overrides_are_recorded_once_with_who_and_when(seeded: Runtime) -> None:
    first = NOW + timedelta(hours=1)
    with seeded.db.transaction() as session:
        view = retry_export(session, "#1043", first, ship_without_imei=True, actor="alice")
    assert view.ship_without_imei
    assert not view.allow_reused_imeis

    with seeded.db.transaction() as session:
        # Asked again: nothing new to record.
        retry_export(session, "#1043", first + timedelta(hours=1), ship_without_imei=True)
        view = retry_export(
            session, "81234568", first + timedelta(hours=2), allow_reused_imeis=True, actor="bob"
        )

    assert (view.ship_without_imei, view.allow_reused_imeis) == (True, True)
    assert view.override_note == (
        "2026-03-10T16:00:00+00:00 alice: ship without IMEI\n"
        "2026-03-10T18:00:00+00:00 bob: allow reused IMEIs"
    )
    with seeded.db.transaction() as session:
        job = job_of(session, A_1043)
        assert (job.ship_without_imei, job.allow_reused_imeis) == (True, True)
        assert job.override_note == view.override_note
        assert job_of(session, A_1042).override_note is None  # the other #1042s are untouched
