"""The export worker: claims jobs and runs them (see runner.py), many threads per process.

Workers in any number of processes and hosts share the queue through the database; PostgreSQL's
LISTEN/NOTIFY wakes them the moment a webhook queues an export.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import httpx
import psycopg
from pydantic import SecretStr
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from shopify_bm.backmarket.client import BackMarketClient
from shopify_bm.budget import RequestBudget
from shopify_bm.ingestion import NOTIFY_CHANNEL
from shopify_bm.models import ExportStatus, Shop, utcnow
from shopify_bm.queue import claim_next_job, recover_stalled_jobs
from shopify_bm.runner import ExportRun, JobFinished, load_claimed
from shopify_bm.runtime import Runtime

log = logging.getLogger(__name__)

ClientFactory = Callable[[Shop], BackMarketClient]


class ClientCache:
    """One Back Market client per shop and token, shared by a process's worker threads.

    httpx clients are thread-safe and keep connections alive, so threads reuse them.
    """

    def __init__(self, timeout: float) -> None:
        self._timeout = timeout
        self._lock = threading.Lock()
        self._clients: dict[tuple[int, str], BackMarketClient] = {}

    def get(self, shop: Shop) -> BackMarketClient:
        """The shop's client, built on first use; blocks the export when settings are wrong."""
        if not shop.backmarket_token:
            raise JobFinished(
                ExportStatus.BLOCKED,
                "No Back Market API token is configured for this shop.",
                reason_code="backmarket_token_missing",
            )
        key = (shop.id, shop.backmarket_token)
        with self._lock:
            if key not in self._clients:
                self._clients[key] = self._build(shop, shop.backmarket_token)
            return self._clients[key]

    def _build(self, shop: Shop, token: str) -> BackMarketClient:
        try:
            return BackMarketClient.build(
                base_url=shop.backmarket_url,
                token=SecretStr(token),
                company=shop.backmarket_company or shop.name or shop.domain.split(".")[0],
                contact_email=shop.backmarket_contact_email or "",
                locale=shop.backmarket_locale,
                timeout=self._timeout,
            )
        except ValueError as error:  # the client's own checks; messages never hold the token
            raise JobFinished(
                ExportStatus.BLOCKED,
                f"The Back Market settings are incomplete: {error}. Back Market requires a "
                "contact email and a valid token (BACKMARKET_CONTACT_EMAIL, "
                "BACKMARKET_API_TOKEN).",
                reason_code="backmarket_settings_invalid",
            ) from None

    def close(self) -> None:
        """Close every client's connections."""
        with self._lock:
            for client in self._clients.values():
                client.close()
            self._clients.clear()


@dataclass
class Worker:
    """One export loop (one thread); `run` loops until `stop` is set, finishing the job in hand."""

    runtime: Runtime
    client_factory: ClientFactory | None = None
    worker_id: str = field(default_factory=lambda: f"{socket.gethostname()}:{os.getpid()}")
    stop: threading.Event = field(default_factory=threading.Event)
    clock: Callable[[], datetime] = utcnow
    budget: RequestBudget = field(default_factory=RequestBudget)
    clients: ClientCache | None = None
    shopify_http: httpx.Client | None = None  # the Admin API's transport (tests inject one)
    _owns_clients: bool = field(default=False, repr=False)
    _next_recovery: float = field(default=0.0, repr=False)

    def __post_init__(self) -> None:
        if self.clients is None:
            self.clients = ClientCache(self.runtime.settings.backmarket_timeout_seconds)
            self._owns_clients = True

    def run(self) -> None:
        """Claim and run jobs until asked to stop; sleep until woken or the poll interval ends."""
        log.info("worker %s started", self.worker_id)
        waker = self.runtime.waker
        failures = 0
        while not self.stop.is_set():
            seen = waker.generation
            try:
                worked = self.run_once()
                failures = 0
            except DBAPIError as error:
                # The database is down or refusing connections: wait and try again. A job
                # interrupted here stays claimed and is recovered after the lock timeout.
                failures += 1
                log.error(
                    "database unavailable (%s); retrying in %ss",
                    type(error.orig).__name__,
                    min(2**failures, 30),
                )
                self.stop.wait(min(2**failures, 30))
                continue
            if not worked:
                waker.wait(seen, self.runtime.settings.worker_poll_seconds)
        self.close()
        log.info("worker %s stopped", self.worker_id)

    def close(self) -> None:
        """Release the Back Market connections this worker owns."""
        if self._owns_clients and self.clients is not None:
            self.clients.close()

    def run_once(self) -> bool:
        """Claim and run one due job (recovering stalled ones now and then); False when none."""
        now = self.clock()
        with self.runtime.db.transaction() as session:
            self._recover_stalled(session, now)
            job = claim_next_job(session, self.worker_id, now, self.budget)
            if job is None:
                return False
            claimed = load_claimed(session, job, self.worker_id, now)
        ExportRun(
            self.runtime, claimed, self._client, self.clock, self.budget, self.shopify_http
        ).execute()
        return True

    def _recover_stalled(self, session: Session, now: datetime) -> None:
        # A crashed worker's jobs wait out the lock timeout; looking a few times per timeout is
        # enough, and spares an UPDATE on every claim.
        timeout = self.runtime.settings.job_lock_timeout_seconds
        if time.monotonic() < self._next_recovery:
            return
        self._next_recovery = time.monotonic() + min(timeout / 4, 30.0)
        recovered = recover_stalled_jobs(session, now, timedelta(seconds=timeout))
        if recovered:
            log.warning("requeued %d export(s) left by a stopped worker", recovered)

    def _client(self, shop: Shop) -> BackMarketClient:
        if self.client_factory is not None:
            return self.client_factory(shop)
        assert self.clients is not None  # set in __post_init__
        return self.clients.get(shop)


class PostgresListener:
    """LISTENs for queued exports on PostgreSQL and wakes this process's idle workers at once.

    Any process that queues an export NOTIFYs at commit (see ingestion), so workers on other
    hosts start within milliseconds instead of at their next poll.
    """

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="pg-listener", daemon=True)

    def start(self) -> None:
        """Listen in a background thread."""
        self._thread.start()

    def close(self) -> None:
        """Stop listening (within a second)."""
        self.stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        conninfo = self.runtime.db.url.set(drivername="postgresql")
        while not self.stop.is_set():
            try:
                with psycopg.connect(
                    conninfo.render_as_string(hide_password=False), autocommit=True
                ) as connection:
                    connection.execute(f"LISTEN {NOTIFY_CHANNEL}")
                    while not self.stop.is_set():
                        for _ in connection.notifies(timeout=1.0):
                            self.runtime.waker.notify()
            except psycopg.OperationalError as error:
                log.warning("LISTEN connection lost (%s); polling until it is back", error)
                self.stop.wait(2.0)


class WorkerPool:
    """`concurrency` worker threads in one process, sharing Back Market clients and wake-ups.

    Exports spend most of their time waiting on Back Market, so threads overlap that latency;
    the per-shop budget, not the thread count, bounds each shop's request rate.
    """

    def __init__(
        self,
        runtime: Runtime,
        concurrency: int,
        *,
        client_factory: ClientFactory | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.runtime = runtime
        self.clients = ClientCache(runtime.settings.backmarket_timeout_seconds)
        base = f"{socket.gethostname()}:{os.getpid()}"
        self.workers = [
            Worker(
                runtime,
                client_factory=client_factory,
                worker_id=f"{base}:{n}",
                clock=clock,
                clients=self.clients,
            )
            for n in range(max(concurrency, 1))
        ]
        self._listener = PostgresListener(runtime) if runtime.db.is_postgresql else None

    def run(self) -> None:
        """Run every worker until `stop`; returns when all finished their current job."""
        if self._listener is not None:
            self._listener.start()
        threads = [
            threading.Thread(target=w.run, name=f"export-worker-{n}")
            for n, w in enumerate(self.workers)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        if self._listener is not None:
            self._listener.close()
        self.clients.close()

    def stop(self) -> None:
        """Ask every worker to stop after its current job."""
        for worker in self.workers:
            worker.stop.set()
        self.runtime.waker.notify()
