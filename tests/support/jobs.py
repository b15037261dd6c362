"""Export jobs and shops written straight into the database, for queue and operations tests."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from shopify_bm.models import ExportJob, ExportStatus, Shop

NOW = datetime(2026, 3, 10, 15, 0, tzinfo=UTC)


def shop_id(session: Session, domain: str) -> int:
    """The id of the shop with that domain, created (with default settings) when missing."""
    found = session.execute(select(Shop.id).where(Shop.domain == domain)).scalar_one_or_none()
    if found is not None:
        return found
    shop = Shop(domain=domain)
    session.add(shop)
    session.flush()
    return shop.id


def add_job(
    session: Session,
    shop: int,
    shopify_order_id: int,
    status: str = ExportStatus.PENDING,
    *,
    run_after: datetime = NOW,
    **fields: Any,
) -> ExportJob:
    """An export job row as the worker would have left it."""
    job = ExportJob(
        shop_id=shop,
        shopify_order_id=shopify_order_id,
        status=str(status),
        run_after=run_after,
        created_at=fields.pop("created_at", run_after),
        updated_at=fields.pop("updated_at", run_after),
        **fields,
    )
    session.add(job)
    session.flush()
    return job


def job_of(session: Session, shopify_order_id: int, shop: int | None = None) -> ExportJob:
    """The job of one order, read fresh from the database."""
    query = select(ExportJob).where(ExportJob.shopify_order_id == shopify_order_id)
    if shop is not None:
        query = query.where(ExportJob.shop_id == shop)
    return session.execute(query.execution_options(populate_existing=True)).scalar_one()
