"""What a merchant or an operator does with exports: list, look at, retry, override.

Shared by the CLI and the admin page, so both say and do exactly the same.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from shopify_bm.models import ExportAttempt, ExportJob, ExportStatus, Shop

_MAX_ID = 2**63 - 1  # BIGINT: a larger number names no order, and the databases refuse it


class ExportNotFoundError(LookupError):
    """No export matches that order reference."""


class AmbiguousExportError(LookupError):
    """Several shops have an order with that reference; name the shop."""


class ExportAlreadyDoneError(ValueError):
    """The order is already exported: Back Market knows, and will not take it twice."""


@dataclass(frozen=True)
class ExportView:
    """One export as people see it."""

    shop: str
    order: str
    shopify_order_id: int
    backmarket_order_id: int | None
    status: str
    reason_code: str | None
    reason: str | None
    problems: list[dict[str, Any]]
    attempts: int
    next_attempt_at: datetime | None
    exported_at: datetime | None
    updated_at: datetime
    ship_without_imei: bool
    allow_reused_imeis: bool
    override_note: str | None
    shipment: dict[str, Any] | None

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready (datetimes as ISO 8601)."""
        return _json_ready(self)


@dataclass(frozen=True)
class AttemptView:
    """One run of an export."""

    started_at: datetime
    finished_at: datetime | None
    outcome: str
    detail: str | None
    worker: str | None

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready (datetimes as ISO 8601)."""
        return _json_ready(self)


def _json_ready(view: ExportView | AttemptView) -> dict[str, Any]:
    return {k: v.isoformat() if isinstance(v, datetime) else v for k, v in asdict(view).items()}


def list_exports(
    session: Session,
    statuses: Sequence[str] = (),
    shop: str | None = None,
    limit: int = 200,
) -> list[ExportView]:
    """Exports, most recently changed first, optionally of some statuses and one shop."""
    query = select(ExportJob, Shop.domain).join(Shop, Shop.id == ExportJob.shop_id)
    if statuses:
        query = query.where(ExportJob.status.in_(list(statuses)))
    if shop:
        query = query.where(Shop.domain == shop)
    query = query.order_by(ExportJob.updated_at.desc(), ExportJob.id.desc()).limit(limit)
    return [_view(job, domain) for job, domain in session.execute(query).all()]


def find_export(session: Session, ref: str, shop: str | None = None) -> tuple[ExportJob, str]:
    """The export of an order named `#1042`, `1042`, its Shopify id, or its Back Market id."""
    ref = ref.strip()
    name = ref if ref.startswith("#") else f"#{ref}"
    conditions = [ExportJob.order_name == name, ExportJob.order_name == ref]
    digits = ref.lstrip("#")
    # ASCII digits only (int() refuses "²" and reads "١٠٤٢"), and within the id columns' range.
    if digits.isascii() and digits.isdigit() and int(digits) <= _MAX_ID:
        number = int(digits)
        conditions += [
            ExportJob.shopify_order_id == number,
            ExportJob.backmarket_order_id == number,
        ]
    query = (
        select(ExportJob, Shop.domain)
        .join(Shop, Shop.id == ExportJob.shop_id)
        .where(or_(*conditions))
    )
    if shop:
        query = query.where(Shop.domain == shop)
    rows = session.execute(query).all()
    if not rows:
        raise ExportNotFoundError(f"no export for order {ref!r}")
    if len({domain for _, domain in rows}) > 1:
        raise AmbiguousExportError(f"order {ref!r} exists in several shops: pass --shop")
    job, domain = rows[0]
    return job, domain


def describe_export(session: Session, ref: str, shop: str | None = None) -> ExportView:
    """One export, by order reference."""
    job, domain = find_export(session, ref, shop)
    return _view(job, domain)


def attempts_of(session: Session, ref: str, shop: str | None = None) -> list[AttemptView]:
    """The runs of one export, newest first."""
    job, _ = find_export(session, ref, shop)
    rows = session.execute(
        select(ExportAttempt)
        .where(ExportAttempt.job_id == job.id)
        .order_by(ExportAttempt.id.desc())
        .limit(50)
    ).scalars()
    return [AttemptView(a.started_at, a.finished_at, a.outcome, a.detail, a.worker) for a in rows]


def retry_export(
    session: Session,
    ref: str,
    now: datetime,
    *,
    shop: str | None = None,
    ship_without_imei: bool = False,
    allow_reused_imeis: bool = False,
    actor: str = "operator",
) -> ExportView:
    """Queue the export again now, optionally with an override that is recorded."""
    job, domain = find_export(session, ref, shop)
    if job.status == ExportStatus.EXPORTED:
        raise ExportAlreadyDoneError(f"order {job.order_name or ref} is already exported")
    notes = [job.override_note] if job.override_note else []
    if ship_without_imei and not job.ship_without_imei:
        job.ship_without_imei = True
        notes.append(f"{now.isoformat(timespec='seconds')} {actor}: ship without IMEI")
    if allow_reused_imeis and not job.allow_reused_imeis:
        job.allow_reused_imeis = True
        notes.append(f"{now.isoformat(timespec='seconds')} {actor}: allow reused IMEIs")
    job.override_note = "\n".join(notes) or None
    if job.status == ExportStatus.RUNNING:
        job.rerun = True  # its worker runs it again when done
    else:
        job.status, job.run_after, job.attempts = ExportStatus.PENDING, now, 0
        job.failing_since = None
    job.updated_at = now
    session.flush()
    return _view(job, domain)


def _view(job: ExportJob, domain: str) -> ExportView:
    queued = job.status in (ExportStatus.PENDING, ExportStatus.RETRY)
    return ExportView(
        shop=domain,
        order=job.order_name or str(job.shopify_order_id),
        shopify_order_id=job.shopify_order_id,
        backmarket_order_id=job.backmarket_order_id,
        status=job.status,
        reason_code=job.reason_code,
        reason=job.last_error,
        problems=list(job.problems or []),
        attempts=job.attempts,
        next_attempt_at=job.run_after if queued else None,
        exported_at=job.exported_at,
        updated_at=job.updated_at,
        ship_without_imei=job.ship_without_imei,
        allow_reused_imeis=job.allow_reused_imeis,
        override_note=job.override_note,
        shipment=job.shipment,
    )
