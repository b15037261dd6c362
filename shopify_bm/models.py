"""The database rows: shops, webhook deliveries, order snapshots and the export queue."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from shopify_bm.crypto import EncryptedString


def utcnow() -> datetime:
    """The current time, timezone-aware (naive datetimes are refused everywhere)."""
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware datetimes on both databases (SQLite stores no zone of its own)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Refuse naive datetimes; store UTC."""
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime: pass a timezone-aware value")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Read back as UTC-aware."""
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    """Declarative base with stable constraint names, so Alembic migrations stay portable."""

    metadata = MetaData(
        naming_convention={
            "ix": "ix_%(column_0_label)s",
            "uq": "uq_%(table_name)s_%(column_0_name)s",
            "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
            "pk": "pk_%(table_name)s",
        }
    )
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        datetime: UTCDateTime(),
        dict[str, Any]: JSON(),
        list[Any]: JSON(),
    }


class Shop(Base):
    """An installed Shopify store and its Back Market account."""

    __tablename__ = "shops"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    domain: Mapped[str] = mapped_column(String(255), unique=True)
    name: Mapped[str | None] = mapped_column(String(255))
    installed: Mapped[bool] = mapped_column(Boolean, default=True)
    # Shopify Admin API credentials (expiring offline token and its refresh token).
    access_token: Mapped[str | None] = mapped_column(EncryptedString())
    access_token_expires_at: Mapped[datetime | None]
    refresh_token: Mapped[str | None] = mapped_column(EncryptedString())
    refresh_token_expires_at: Mapped[datetime | None]
    scope: Mapped[str | None] = mapped_column(String(1000))
    # Back Market account.
    backmarket_token: Mapped[str | None] = mapped_column(EncryptedString())
    backmarket_url: Mapped[str] = mapped_column(String(255), default="https://www.backmarket.fr")
    backmarket_locale: Mapped[str] = mapped_column(String(10), default="fr-fr")
    backmarket_company: Mapped[str | None] = mapped_column(String(100))
    backmarket_contact_email: Mapped[str | None] = mapped_column(String(255))
    # Export decisions.
    ship_without_imei: Mapped[bool] = mapped_column(Boolean, default=False)
    exempt_skus: Mapped[list[Any]] = mapped_column(default=list)
    accept_orders: Mapped[bool] = mapped_column(Boolean, default=True)
    note_attribute: Mapped[str] = mapped_column(String(100), default="backmarket_order_id")
    tag_prefix: Mapped[str] = mapped_column(String(20), default="BM:")
    # Back Market throttled this shop: its jobs wait, other shops' do not.
    throttled_until: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class ShopBudget(Base):
    """A shop's Back Market request budget (see budget.py), updated on every request.

    Kept apart from `shops` on purpose: rows that reference a shop (IMEIs, jobs) lock it in KEY
    SHARE mode, and a row that is both key-shared and updated many times a second makes
    PostgreSQL build multixacts, which stalled every worker under load. Nothing references this.
    """

    __tablename__ = "shop_budgets"

    shop_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # GCRA theoretical arrival time, epoch seconds.
    request_tat: Mapped[float] = mapped_column(Float, default=0.0)


class WebhookDelivery(Base):
    """One verified webhook delivery, kept as received; its id makes redelivery a no-op."""

    __tablename__ = "webhook_deliveries"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    webhook_id: Mapped[str] = mapped_column(String(255), unique=True)
    event_id: Mapped[str | None] = mapped_column(String(255))
    topic: Mapped[str] = mapped_column(String(100))
    shop_domain: Mapped[str] = mapped_column(String(255))
    api_version: Mapped[str | None] = mapped_column(String(20))
    triggered_at: Mapped[datetime | None]
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    shopify_order_id: Mapped[int | None] = mapped_column(BigInteger)
    body: Mapped[str] = mapped_column(Text)


class Order(Base):
    """The newest snapshot of a Shopify order, merged from order and fulfillment webhooks."""

    __tablename__ = "orders"
    __table_args__ = (UniqueConstraint("shop_id", "shopify_order_id"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    shop_id: Mapped[int] = mapped_column(ForeignKey("shops.id", ondelete="CASCADE"))
    shopify_order_id: Mapped[int] = mapped_column(BigInteger)
    name: Mapped[str | None] = mapped_column(String(100))
    backmarket_order_id: Mapped[int | None] = mapped_column(BigInteger, index=True)
    # The order JSON (orders/* webhooks); None until one arrives.
    payload: Mapped[dict[str, Any] | None]
    # Shopify's `updated_at` of `payload`: an older delivery never replaces a newer one.
    order_updated_at: Mapped[datetime | None]
    # Fulfillment JSON by fulfillment id, from fulfillments/* webhooks (newest per id).
    fulfillments: Mapped[dict[str, Any]] = mapped_column(default=dict)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class ExportStatus(StrEnum):
    """Where one order's export stands."""

    PENDING = "pending"  # queued, runs at run_after
    RUNNING = "running"  # claimed by a worker (locked_by, locked_at)
    RETRY = "retry"  # a transient failure; runs again at run_after
    BLOCKED = "blocked"  # the merchant must act (fix a tag, add tracking…); problems say what
    EXPORTED = "exported"  # Back Market knows it shipped, IMEIs included
    FAILED = "failed"  # Back Market refused for good; a person must look (retry is possible)
    IGNORED = "ignored"  # nothing to export (not a Back Market order, not fulfilled yet)


QUEUED_STATUSES = (ExportStatus.PENDING, ExportStatus.RETRY)
# A new webhook for the order makes these worth another look at once.
REEVALUATED_STATUSES = (ExportStatus.PENDING, ExportStatus.BLOCKED, ExportStatus.IGNORED)


class ExportJob(Base):
    """One order's export: the queue row and the record of every step already done."""

    __tablename__ = "export_jobs"
    __table_args__ = (
        UniqueConstraint("shop_id", "shopify_order_id"),
        Index("ix_export_jobs_claim", "status", "run_after"),
        Index("ix_export_jobs_shop_claim", "shop_id", "status", "run_after"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    shop_id: Mapped[int] = mapped_column(ForeignKey("shops.id", ondelete="CASCADE"), index=True)
    shopify_order_id: Mapped[int] = mapped_column(BigInteger)
    order_name: Mapped[str | None] = mapped_column(String(100))
    backmarket_order_id: Mapped[int | None] = mapped_column(BigInteger, index=True)
    status: Mapped[str] = mapped_column(String(20), default=ExportStatus.PENDING)
    run_after: Mapped[datetime] = mapped_column(default=utcnow)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    locked_by: Mapped[str | None] = mapped_column(String(100))
    locked_at: Mapped[datetime | None]
    # The order changed while a worker held the job: run it again when that worker is done.
    rerun: Mapped[bool] = mapped_column(Boolean, default=False)
    reason_code: Mapped[str | None] = mapped_column(String(50))
    last_error: Mapped[str | None] = mapped_column(Text)
    problems: Mapped[list[Any]] = mapped_column(default=list)
    # Steps done, so a retry resumes rather than repeats (Back Market has no idempotency key).
    accepted_skus: Mapped[list[Any]] = mapped_column(default=list)
    shipped_at: Mapped[datetime | None]
    imei_line_ids: Mapped[list[Any]] = mapped_column(default=list)
    shipment: Mapped[dict[str, Any] | None]  # what was (or will be) sent: tracking, shipper, IMEIs
    # Merchant overrides, recorded with who and when.
    ship_without_imei: Mapped[bool] = mapped_column(Boolean, default=False)
    allow_reused_imeis: Mapped[bool] = mapped_column(Boolean, default=False)
    override_note: Mapped[str | None] = mapped_column(Text)
    failing_since: Mapped[datetime | None]
    exported_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class ExportAttempt(Base):
    """The history of one export: every run, what it did and how it ended."""

    __tablename__ = "export_attempts"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    job_id: Mapped[int] = mapped_column(
        ForeignKey("export_jobs.id", ondelete="CASCADE"), index=True
    )
    worker: Mapped[str | None] = mapped_column(String(100))
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None]
    outcome: Mapped[str] = mapped_column(String(20))
    detail: Mapped[str | None] = mapped_column(Text)


class ExportedImei(Base):
    """An IMEI sent (or about to be sent) to Back Market; the same phone twice is a mistake."""

    __tablename__ = "exported_imeis"
    __table_args__ = (Index("ix_exported_imeis_order", "shop_id", "shopify_order_id"),)

    shop_id: Mapped[int] = mapped_column(
        ForeignKey("shops.id", ondelete="CASCADE"), primary_key=True
    )
    imei: Mapped[str] = mapped_column(String(15), primary_key=True)
    shopify_order_id: Mapped[int] = mapped_column(BigInteger)
    order_name: Mapped[str | None] = mapped_column(String(100))
    recorded_at: Mapped[datetime] = mapped_column(default=utcnow)
