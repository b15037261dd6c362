"""Per-shop Back Market request budget, and indexes for claiming and releasing IMEIs.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Its own table, referenced by nothing: see ShopBudget in models.py.
    op.create_table(
        "shop_budgets",
        sa.Column("shop_id", sa.Integer(), nullable=False),
        sa.Column("request_tat", sa.Float(), nullable=False, server_default=sa.text("0")),
        sa.PrimaryKeyConstraint("shop_id", name=op.f("pk_shop_budgets")),
    )
    op.create_index("ix_export_jobs_shop_claim", "export_jobs", ["shop_id", "status", "run_after"])


def downgrade() -> None:
    op.drop_index("ix_exported_imeis_order", table_name="exported_imeis")
    op.drop_index("ix_export_jobs_shop_claim", table_name="export_jobs")
    op.drop_table("shop_budgets")
