"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "shops",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("domain", sa.String(length=255), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=True),
        sa.Column("installed", sa.Boolean(), nullable=False),
        sa.Column("access_token", sa.Text(), nullable=True),
        sa.Column("access_token_expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("refresh_token", sa.Text(), nullable=True),
        sa.Column("refresh_token_expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("scope", sa.String(length=1000), nullable=True),
        sa.Column("backmarket_token", sa.Text(), nullable=True),
        sa.Column("backmarket_url", sa.String(length=255), nullable=False),
        sa.Column("backmarket_locale", sa.String(length=10), nullable=False),
        sa.Column("backmarket_company", sa.String(length=100), nullable=True),
        sa.Column("backmarket_contact_email", sa.String(length=255), nullable=True),
        sa.Column("ship_without_imei", sa.Boolean(), nullable=False),
        sa.Column("exempt_skus", sa.JSON(), nullable=False),
        sa.Column("accept_orders", sa.Boolean(), nullable=False),
        sa.Column("note_attribute", sa.String(length=100), nullable=False),
        sa.Column("tag_prefix", sa.String(length=20), nullable=False),
        sa.Column("throttled_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_shops")),
        sa.UniqueConstraint("domain", name=op.f("uq_shops_domain")),
    )
    op.create_table(
        "webhook_deliveries",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("webhook_id", sa.String(length=255), nullable=False),
        sa.Column("event_id", sa.String(length=255), nullable=True),
        sa.Column("topic", sa.String(length=100), nullable=False),
        sa.Column("shop_domain", sa.String(length=255), nullable=False),
        sa.Column("api_version", sa.String(length=20), nullable=True),
        sa.Column("triggered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("shopify_order_id", sa.BigInteger(), nullable=True),
        sa.Column("body", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_deliveries")),
        sa.UniqueConstraint("webhook_id", name=op.f("uq_webhook_deliveries_webhook_id")),
    )
    op.create_table(
        "export_jobs",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("shop_id", sa.Integer(), nullable=False),
        sa.Column("shopify_order_id", sa.BigInteger(), nullable=False),
        sa.Column("order_name", sa.String(length=100), nullable=True),
        sa.Column("backmarket_order_id", sa.BigInteger(), nullable=True),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("run_after", sa.DateTime(timezone=True), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("locked_by", sa.String(length=100), nullable=True),
        sa.Column("locked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("rerun", sa.Boolean(), nullable=False),
        sa.Column("reason_code", sa.String(length=50), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("problems", sa.JSON(), nullable=False),
        sa.Column("accepted_skus", sa.JSON(), nullable=False),
        sa.Column("shipped_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("imei_line_ids", sa.JSON(), nullable=False),
        sa.Column("shipment", sa.JSON(), nullable=True),
        sa.Column("ship_without_imei", sa.Boolean(), nullable=False),
        sa.Column("allow_reused_imeis", sa.Boolean(), nullable=False),
        sa.Column("override_note", sa.Text(), nullable=True),
        sa.Column("failing_since", sa.DateTime(timezone=True), nullable=True),
        sa.Column("exported_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["shop_id"], ["shops.id"], name=op.f("fk_export_jobs_shop_id_shops"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_export_jobs")),
        sa.UniqueConstraint("shop_id", "shopify_order_id", name=op.f("uq_export_jobs_shop_id")),
    )
    with op.batch_alter_table("export_jobs", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_export_jobs_backmarket_order_id"), ["backmarket_order_id"], unique=False
        )
        batch_op.create_index("ix_export_jobs_claim", ["status", "run_after"], unique=False)
        batch_op.create_index(batch_op.f("ix_export_jobs_shop_id"), ["shop_id"], unique=False)

    op.create_table(
        "exported_imeis",
        sa.Column("shop_id", sa.Integer(), nullable=False),
        sa.Column("imei", sa.String(length=15), nullable=False),
        sa.Column("shopify_order_id", sa.BigInteger(), nullable=False),
        sa.Column("order_name", sa.String(length=100), nullable=True),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["shop_id"],
            ["shops.id"],
            name=op.f("fk_exported_imeis_shop_id_shops"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("shop_id", "imei", name=op.f("pk_exported_imeis")),
    )
    op.create_table(
        "orders",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("shop_id", sa.Integer(), nullable=False),
        sa.Column("shopify_order_id", sa.BigInteger(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=True),
        sa.Column("backmarket_order_id", sa.BigInteger(), nullable=True),
        sa.Column("payload", sa.JSON(), nullable=True),
        sa.Column("order_updated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("fulfillments", sa.JSON(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["shop_id"], ["shops.id"], name=op.f("fk_orders_shop_id_shops"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_orders")),
        sa.UniqueConstraint("shop_id", "shopify_order_id", name=op.f("uq_orders_shop_id")),
    )
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_orders_backmarket_order_id"), ["backmarket_order_id"], unique=False
        )

    op.create_table(
        "export_attempts",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("job_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("worker", sa.String(length=100), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("outcome", sa.String(length=20), nullable=False),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["job_id"],
            ["export_jobs.id"],
            name=op.f("fk_export_attempts_job_id_export_jobs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_export_attempts")),
    )
    with op.batch_alter_table("export_attempts", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_export_attempts_job_id"), ["job_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("export_attempts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_export_attempts_job_id"))

    op.drop_table("export_attempts")
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_orders_backmarket_order_id"))

    op.drop_table("orders")
    op.drop_table("exported_imeis")
    with op.batch_alter_table("export_jobs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_export_jobs_shop_id"))
        batch_op.drop_index("ix_export_jobs_claim")
        batch_op.drop_index(batch_op.f("ix_export_jobs_backmarket_order_id"))

    op.drop_table("export_jobs")
    op.drop_table("webhook_deliveries")
    op.drop_table("shops")
