"""Queue semantics in one place: enqueue, claim, and recovery of jobs whose worker died.

The outbox is the queue: an export job is a row, written in the transaction that stores the
webhook delivery, so a shipment is never acknowledged without being queued. One row per order
(a unique key) coalesces every delivery about that order into one export.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.orm import Session

from shopify_bm.budget import RequestBudget, budget_tat, has_budget_condition
from shopify_bm.db import DriverStatement
from shopify_bm.models import (
    QUEUED_STATUSES,
    REEVALUATED_STATUSES,
    ExportJob,
    ExportStatus,
    Shop,
    ShopBudget,
    UTCDateTime,
)

_WAKE = ", ".join(f"'{status}'" for status in REEVALUATED_STATUSES)


# Runs inside every webhook request, so on the driver's cursor. New jobs start pending; a new
# trigger wakes settled jobs, keeps a backoff's time, and flags a running job to run again.
_ENQUEUE = DriverStatement(
    f"""
    INSERT INTO export_jobs (shop_id, shopify_order_id, order_name, status, run_after, attempts,
        rerun, problems, accepted_skus, imei_line_ids, ship_without_imei, allow_reused_imeis,
        created_at, updated_at)
    VALUES (:shop_id, :shopify_order_id, :order_name, '{ExportStatus.PENDING}', :now, 0,
        false, '[]', '[]', '[]', false, false, :now, :now)
    ON CONFLICT (shop_id, shopify_order_id) DO UPDATE SET
        status = CASE WHEN export_jobs.status IN ({_WAKE})
            THEN '{ExportStatus.PENDING}' ELSE export_jobs.status END,
        run_after = CASE WHEN export_jobs.status IN ({_WAKE})
            THEN excluded.run_after ELSE export_jobs.run_after END,
        rerun = CASE WHEN export_jobs.status = '{ExportStatus.RUNNING}'
            THEN true ELSE export_jobs.rerun END,
        order_name = COALESCE(excluded.order_name, export_jobs.order_name),
        updated_at = excluded.updated_at
    """,  # noqa: S608 (constants of this module, no input)
    {"now": UTCDateTime()},
)


def enqueue_export(
    session: Session, shop_id: int, shopify_order_id: int, order_name: str | None, now: datetime
) -> None:
    """Ask for the order to be (re)evaluated: new jobs start pending, settled ones wake up.

    A running job is flagged to run again when its worker finishes, so a tag fixed while the
    worker talks to Back Market is not missed. Jobs waiting out a backoff keep their time, and
    exported or failed ones stay as they are (retry is a person's decision for failures).
    """
    _ENQUEUE.execute(
        session,
        {
            "shop_id": shop_id,
            "shopify_order_id": shopify_order_id,
            "order_name": order_name,
            "now": now,
        },
    )


def claim_next_job(
    session: Session, worker_id: str, now: datetime, budget: RequestBudget | None = None
) -> ExportJob | None:
    """Take the next due job of a shop that may call Back Market now; None when none is due.

    Fair across shops: the shop served least recently (its budget's TAT is oldest) goes first,
    and shops whose budget is spent or that Back Market throttled are skipped, so one busy shop
    never holds the workers others could use. One query for both databases: `FOR UPDATE SKIP
    LOCKED` on PostgreSQL lets many workers claim side by side; SQLite serialises writers.
    """
    budget = budget or RequestBudget()
    due = (
        select(ExportJob.id)
        .join(Shop, Shop.id == ExportJob.shop_id)
        .outerjoin(ShopBudget, ShopBudget.shop_id == ExportJob.shop_id)
        .where(
            ExportJob.status.in_([str(s) for s in QUEUED_STATUSES]),
            ExportJob.run_after <= now,
            or_(Shop.throttled_until.is_(None), Shop.throttled_until <= now),
            has_budget_condition(now.timestamp(), budget),
        )
        .order_by(budget_tat(), ExportJob.run_after, ExportJob.id)
        .limit(1)
        .with_for_update(skip_locked=True, of=ExportJob)
        .scalar_subquery()
    )
    # RETURNING the whole row: the claim is also the read, no second round trip.
    return session.scalars(
        update(ExportJob)
        .where(ExportJob.id == due)
        .values(status=ExportStatus.RUNNING, locked_by=worker_id, locked_at=now, updated_at=now)
        .returning(ExportJob),
        execution_options={"populate_existing": True},
    ).one_or_none()


def recover_stalled_jobs(session: Session, now: datetime, lock_timeout: timedelta) -> int:
    """Requeue jobs whose worker stopped heart-beating (crashed or killed); returns how many.

    The export itself is safe to resume: it re-reads Back Market before any write.
    """
    result = session.execute(
        update(ExportJob)
        .where(
            and_(
                ExportJob.status == str(ExportStatus.RUNNING),
                ExportJob.locked_at < now - lock_timeout,
            )
        )
        .values(
            status=ExportStatus.RETRY,
            run_after=now,
            locked_by=None,
            locked_at=None,
            last_error="The worker handling this export stopped; resumed by another.",
            updated_at=now,
        )
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0) or 0)


def next_due_at(session: Session, now: datetime) -> datetime | None:
    """When the earliest queued job becomes due (for the worker's sleep)."""
    return session.execute(
        select(func.min(ExportJob.run_after)).where(
            ExportJob.status.in_([str(s) for s in QUEUED_STATUSES])
        )
    ).scalar_one_or_none()
