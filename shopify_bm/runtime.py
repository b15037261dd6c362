"""What one running process shares between the web app, the worker and the CLI."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from shopify_bm.crypto import keyring, load_or_create_key
from shopify_bm.db import Database
from shopify_bm.settings import Settings


class Waker:
    """Wakes idle worker threads when work is queued, without ever losing a wake-up.

    A worker notes the generation before it looks for work and sleeps only while the generation
    is unchanged, so work announced between its look and its sleep is never missed.
    """

    def __init__(self) -> None:
        self._condition = threading.Condition()
        self._generation = 0

    @property
    def generation(self) -> int:
        """How many times work was announced."""
        with self._condition:
            return self._generation

    def notify(self) -> None:
        """Announce work to every waiting worker."""
        with self._condition:
            self._generation += 1
            self._condition.notify_all()

    def wait(self, since: int, timeout: float) -> bool:
        """Sleep until work is announced after generation `since`, or `timeout` passes."""
        with self._condition:
            return self._condition.wait_for(lambda: self._generation != since, timeout)


@dataclass
class Runtime:
    """Settings, the database, and the in-process wake-up of workers."""

    settings: Settings
    db: Database
    # Notified by the webhook view after it queued an export (workers in the same process wake).
    waker: Waker = field(default_factory=Waker)

    @classmethod
    def start(cls, settings: Settings | None = None, *, pool_size: int = 5) -> Runtime:
        """Load keys and open the database (no schema change: see `prepare`)."""
        settings = settings or Settings()
        key = settings.encryption_key
        keyring.configure(
            key.get_secret_value() if key else load_or_create_key(settings.instance_path)
        )
        # Every worker thread and web thread may hold a connection at once.
        pool_size = max(pool_size, settings.worker_concurrency + 4)
        return cls(settings, Database(settings.resolved_database_url, pool_size=pool_size))

    def prepare(self) -> None:
        """Migrate the schema and seed the single store: what `serve` and `worker` do first."""
        from shopify_bm.shops import seed_single_store  # noqa: PLC0415 (shops imports runtime)

        self.db.upgrade()
        if self.settings.single_store:
            with self.db.transaction() as session:
                self.db.serialize_startup(session)  # workers starting together seed once
                seed_single_store(session, self.settings)
