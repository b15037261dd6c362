"""The export queue on both databases: enqueue, claim, stalled-job recovery, concurrent claims."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest
from sqlalchemy import func, select, text

from conftest import TEST_SHOP
from shopify_bm.models import ExportJob, ExportStatus, Shop
from shopify_bm.queue import claim_next_job, enqueue_export, next_due_at, recover_stalled_jobs
from shopify_bm.runtime import Runtime
from support.jobs import NOW, add_job, job_of, shop_id

S = ExportStatus
OTHER_SHOP = "other-refurb.myshopify.com"
LATER = NOW + timedelta(minutes=5)


def count_jobs(runtime: Runtime) -> int:
    with runtime.db.transaction() as session:
        return session.execute(select(func.count()).select_from(ExportJob)).scalar_one()


# --- enqueue ------------------------------------------------------------------------------------


def test_enqueue_creates_one_job_per_order(runtime: Runtime) -> None:
    with runtime.db.transaction() as session:
        shop = shop_id(session, TEST_SHOP)
        other = shop_id(session, OTHER_SHOP)
        enqueue_export(session, shop, 1001, "#1001", NOW)
        enqueue_export(session, shop, 1001, "#1001", NOW + timedelta(seconds=1))
        enqueue_export(session, shop, 1002, None, NOW)
        enqueue_export(session, other, 1001, "#1001", NOW)  # same id, another shop

    with runtime.db.transaction() as session:
        jobs = session.execute(select(ExportJob).order_by(ExportJob.id)).scalars().all()
        assert [(j.shop_id, j.shopify_order_id) for j in jobs] == [
            (shop, 1001),
            (shop, 1002),
            (other, 1001),
        ]
        first = jobs[0]
        assert (first.status, first.order_name, first.attempts, first.rerun) == (
            S.PENDING,
            "#1001",
            0,
            False,
        )
        assert first.run_after == NOW + timedelta(seconds=1)


def test_enqueue_keeps_a_known_order_name(runtime: Runtime) -> None:
    with runtime.db.transaction() as session:
        shop = shop_id(session, TEST_SHOP)
        enqueue_export(session, shop, 1001, "#1001", NOW)
        enqueue_export(session, shop, 1001, None, LATER)  # a fulfillment webhook: no name
    with runtime.db.transaction() as session:
        assert job_of(session, 1001).order_name == "#1001"
    with runtime.db.transaction() as session:
        enqueue_export(session, shop, 1001, "#1001-R", LATER)
    with runtime.db.transaction() as session:
        assert job_of(session, 1001).order_name == "#1001-R"


# Status before a new webhook -> (status, run_after, rerun) after it.
REENQUEUE = {
    S.PENDING: (S.PENDING, LATER, False),
    S.BLOCKED: (S.PENDING, LATER, False),  # the merchant may have fixed the tag
    S.IGNORED: (S.PENDING, LATER, False),  # the order may be fulfilled now
    S.RETRY: (S.RETRY, NOW + timedelta(hours=1), False),  # keeps its backoff
    S.RUNNING: (S.RUNNING, NOW, True),  # runs again when its worker is done
    S.EXPORTED: (S.EXPORTED, NOW, False),  # never a second export
    S.FAILED: (S.FAILED, NOW, False),  # a person decides
}


def test_reenqueue_by_status(runtime: Runtime) -> None:
    with runtime.db.transaction() as session:
        shop = shop_id(session, TEST_SHOP)
        for order_id, status in enumerate(REENQUEUE, start=1):
            run_after = NOW + timedelta(hours=1) if status == S.RETRY else NOW
            add_job(session, shop, order_id, status, run_after=run_after, attempts=2)

    with runtime.db.transaction() as session:
        for order_id in range(1, len(REENQUEUE) + 1):
            enqueue_export(session, shop, order_id, f"#{order_id}", LATER)

    with runtime.db.transaction() as session:
        after = {
            status: (job.status, job.run_after, job.rerun, job.attempts)
            for status, job in (
                (status, job_of(session, order_id))
                for order_id, status in enumerate(REENQUEUE, start=1)
            )
        }
    assert after == {status: (*expected, 2) for status, expected in REENQUEUE.items()}
    assert count_jobs(runtime) == len(REENQUEUE)


# --- claim --------------------------------------------------------------------------------------


def test_claim_takes_the_earliest_due_job(runtime: Runtime) -> None:
    with runtime.db.transaction() as session:
        shop = shop_id(session, TEST_SHOP)
        add_job(session, shop, 1, S.PENDING, run_after=NOW - timedelta(seconds=1))
        add_job(session, shop, 2, S.RETRY, run_after=NOW - timedelta(seconds=30))
        add_job(session, shop, 3, S.PENDING, run_after=NOW + timedelta(seconds=1))  # future
        add_job(session, shop, 4, S.PENDING, run_after=NOW)
        for order_id, status in enumerate((S.BLOCKED, S.IGNORED, S.FAILED, S.EXPORTED), 10):
            add_job(session, shop, order_id, status, run_after=NOW - timedelta(days=1))
        add_job(session, shop, 20, S.RUNNING, run_after=NOW - timedelta(days=1), locked_at=NOW)

    claimed = []
    for worker in ("w1", "w2", "w3", "w4"):
        with runtime.db.transaction() as session:
            job = claim_next_job(session, worker, NOW)
            claimed.append(None if job is None else (job.shopify_order_id, job.locked_by))
            if job is not None:
                assert (job.status, job.locked_at) == (S.RUNNING, NOW)

    # Oldest run_after first; the one due exactly now is due; the future one is not.
    assert claimed == [(2, "w1"), (1, "w2"), (4, "w3"), None]
    with runtime.db.transaction() as session:
        assert job_of(session, 3).status == S.PENDING
        assert next_due_at(session, NOW) == NOW + timedelta(seconds=1)
        job = claim_next_job(session, "w5", NOW + timedelta(seconds=1))
        assert job is not None
        assert job.shopify_order_id == 3


def test_claim_breaks_ties_by_id(runtime: Runtime) -> None:
    with runtime.db.transaction() as session:
        shop = shop_id(session, TEST_SHOP)
        ids = [add_job(session, shop, order_id).id for order_id in (30, 10, 20)]

    order = []
    for _ in ids:
        with runtime.db.transaction() as session:
            job = claim_next_job(session, "w", NOW)
            assert job is not None
            order.append(job.id)
    assert order == sorted(ids)


def test_claim_on_an_empty_queue_is_none(runtime: Runtime) -> None:
    with runtime.db.transaction() as session:
        assert claim_next_job(session, "w", NOW) is None
        assert next_due_at(session, NOW) is None


def test_claim_skips_throttled_shops(runtime: Runtime) -> None:
    with runtime.db.transaction() as session:
        shop = shop_id(session, TEST_SHOP)
        other = shop_id(session, OTHER_SHOP)
        session.get_one(Shop, shop).throttled_until = NOW + timedelta(minutes=1)
        add_job(session, shop, 1, run_after=NOW - timedelta(minutes=10))  # oldest, throttled
        add_job(session, other, 2, run_after=NOW)

    with runtime.db.transaction() as session:
        job = claim_next_job(session, "w", NOW)
        assert job is not None
        assert job.shop_id == other
        assert claim_next_job(session, "w", NOW) is None  # only the throttled shop's job left

    # The pause ends at throttled_until, not later.
    with runtime.db.transaction() as session:
        job = claim_next_job(session, "w", NOW + timedelta(minutes=1))
        assert job is not None
        assert job.shop_id == shop


# --- stalled jobs -------------------------------------------------------------------------------


def test_recover_stalled_jobs_requeues_only_jobs_locked_too_long(runtime: Runtime) -> None:
    timeout = timedelta(minutes=10)
    with runtime.db.transaction() as session:
        shop = shop_id(session, TEST_SHOP)
        running = {"locked_by": "dead-worker", "run_after": NOW - timedelta(hours=1)}
        add_job(session, shop, 1, S.RUNNING, locked_at=NOW - timedelta(minutes=11), **running)
        add_job(session, shop, 2, S.RUNNING, locked_at=NOW - timedelta(minutes=9), **running)
        add_job(session, shop, 3, S.RUNNING, locked_at=NOW - timeout, **running)  # the boundary
        add_job(session, shop, 4, S.BLOCKED, locked_at=NOW - timedelta(days=1), **running)

    with runtime.db.transaction() as session:
        assert recover_stalled_jobs(session, NOW, timeout) == 1

    with runtime.db.transaction() as session:
        recovered = job_of(session, 1)
        assert (recovered.status, recovered.run_after) == (S.RETRY, NOW)
        assert (recovered.locked_by, recovered.locked_at) == (None, None)
        assert recovered.last_error is not None
        assert "stopped" in recovered.last_error
        assert [job_of(session, i).status for i in (2, 3, 4)] == [S.RUNNING, S.RUNNING, S.BLOCKED]
        assert job_of(session, 2).locked_by == "dead-worker"
        job = claim_next_job(session, "w", NOW)  # and another worker takes it over
        assert job is not None
        assert job.shopify_order_id == 1

    with runtime.db.transaction() as session:
        assert recover_stalled_jobs(session, NOW, timeout) == 0


# --- concurrency --------------------------------------------------------------------------------


def test_concurrent_claims_take_every_job_exactly_once(runtime: Runtime) -> None:
    """Workers claiming at once, each holding its claim a moment, never share a job."""
    jobs, workers = 40, 8
    with runtime.db.transaction() as session:
        shop = shop_id(session, TEST_SHOP)
        for order_id in range(jobs):
            add_job(session, shop, 5000 + order_id, run_after=NOW - timedelta(seconds=order_id))

    claims: dict[str, list[int]] = {f"w{i}": [] for i in range(workers)}
    errors: list[BaseException] = []
    start = threading.Barrier(workers)

    def work(worker_id: str) -> None:
        try:
            start.wait(timeout=10)
            while True:
                with runtime.db.transaction() as session:
                    job = claim_next_job(session, worker_id, NOW)
                    if job is None:
                        return
                    claims[worker_id].append(job.id)
                    time.sleep(0.002)  # the lock is held while others claim
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=work, args=(w,)) for w in claims]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert not errors
    assert not any(thread.is_alive() for thread in threads)
    taken = [job_id for ids in claims.values() for job_id in ids]
    assert len(taken) == jobs
    assert len(set(taken)) == jobs
    with runtime.db.transaction() as session:
        rows = session.execute(select(ExportJob.id, ExportJob.status, ExportJob.locked_by)).all()
    assert {status for _, status, _ in rows} == {S.RUNNING}
    # Each row names the worker that claimed it.
    assert {job_id: locked_by for job_id, _, locked_by in rows} == {
        job_id: worker_id for worker_id, ids in claims.items() for job_id in ids
    }


@pytest.mark.postgres
@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_a_claim_skips_jobs_locked_by_another_transaction(runtime: Runtime) -> None:
    """SKIP LOCKED: a second worker takes the next job at once instead of waiting."""
    with runtime.db.transaction() as session:
        shop = shop_id(session, TEST_SHOP)
        add_job(session, shop, 1, run_after=NOW - timedelta(seconds=2))
        add_job(session, shop, 2, run_after=NOW - timedelta(seconds=1))

    first = runtime.db.sessions()
    try:
        held = claim_next_job(first, "w1", NOW)
        assert held is not None
        assert held.shopify_order_id == 1
        with runtime.db.transaction() as second:
            # Without SKIP LOCKED this would wait for `first`; fail fast instead of hanging.
            second.execute(text("SET LOCAL lock_timeout = '2s'"))
            other = claim_next_job(second, "w2", NOW)
            assert other is not None
            assert other.shopify_order_id == 2
        with runtime.db.transaction() as third:
            third.execute(text("SET LOCAL lock_timeout = '2s'"))
            assert claim_next_job(third, "w3", NOW) is None
    finally:
        first.rollback()  # the first worker died before committing: its job is free again
        first.close()

    with runtime.db.transaction() as session:
        again = claim_next_job(session, "w4", NOW)
        assert again is not None
        assert (again.shopify_order_id, again.locked_by) == (1, "w4")
