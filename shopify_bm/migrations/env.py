"""Alembic environment: runs on the connection the app hands over, or on DATABASE_URL."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from shopify_bm.models import Base

config = context.config


def run(connection: Connection) -> None:
    """Apply migrations on an open connection."""
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",  # SQLite cannot ALTER most things
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


connection = config.attributes.get("connection")
if connection is None:
    from shopify_bm.db import build_engine
    from shopify_bm.settings import Settings

    engine = build_engine(Settings().resolved_database_url)
    with engine.begin() as new_connection:
        run(new_connection)
else:
    run(connection)
