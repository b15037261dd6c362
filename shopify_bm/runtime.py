"""What one running process shares between the web app, the worker and the CLI."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from shopify_bm.crypto import keyring, load_or_create_key
from shopify_bm.db import Database
from shopify_bm.settings import Settings


@dataclass
class Runtime:
    """Settings, the database, and the in-process wake-up of the worker."""

    settings: Settings
    db: Database
    # Set by the webhook view after it queued an export; a worker in the same process wakes.
    work_available: threading.Event = field(default_factory=threading.Event)

    @classmethod
    def start(cls, settings: Settings | None = None, *, pool_size: int = 5) -> Runtime:
        """Load keys and open the database (no schema change: see `prepare`)."""
        settings = settings or Settings()
        key = settings.encryption_key
        keyring.configure(
            key.get_secret_value() if key else load_or_create_key(settings.instance_path)
        )
        return cls(settings, Database(settings.resolved_database_url, pool_size=pool_size))

    def prepare(self) -> None:
        """Migrate the schema and seed the single store: what `serve` and `worker` do first."""
        from shopify_bm.shops import seed_single_store  # noqa: PLC0415 (shops imports runtime)

        self.db.upgrade()
        if self.settings.single_store:
            with self.db.transaction() as session:
                seed_single_store(session, self.settings)
