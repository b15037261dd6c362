"""The export worker: claims jobs, runs them against Back Market, records every step.

Durability rules: a step done at Back Market is committed before the next begins; every attempt
starts by reading the Back Market order, so a retry after a crash, a timeout or a 5xx resumes
instead of repeating (Back Market has no idempotency key, and IMEIs are write-once).
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
from functools import partial
from typing import Any

import psycopg
from pydantic import SecretStr
from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from shopify_bm import backoff
from shopify_bm.backmarket.client import BackMarketClient
from shopify_bm.backmarket.errors import BackMarketError, NotFoundError, RateLimitedError
from shopify_bm.backmarket.retry import is_transient, needs_merchant_action, retry_after
from shopify_bm.budget import RequestBudget, reserve_request
from shopify_bm.exports import (
    Block,
    ExportPlan,
    Ignore,
    Overrides,
    ReadyToExport,
    evaluate_order,
    imei_patches_due,
    plan_export,
    reused_imei_problems,
)
from shopify_bm.ingestion import NOTIFY_CHANNEL
from shopify_bm.models import (
    ExportAttempt,
    ExportedImei,
    ExportJob,
    ExportStatus,
    Order,
    Shop,
    utcnow,
)
from shopify_bm.queue import claim_next_job, dialect_insert, recover_stalled_jobs
from shopify_bm.runtime import Runtime
from shopify_bm.shipments import merge_fulfillments
from shopify_bm.shopify.payloads import PayloadError, parse_order
from shopify_bm.shops import policy_of
from shopify_bm.tags import Problem

log = logging.getLogger(__name__)
# Back Market blocks a throttled client for 10 s when it gives no Retry-After (reference §6).
DEFAULT_THROTTLE = timedelta(seconds=10)

ClientFactory = Callable[[Shop], BackMarketClient]


class JobFinished(Exception):
    """Raised inside a run to end it with a final status."""

    def __init__(
        self,
        status: ExportStatus,
        detail: str,
        *,
        reason_code: str | None = None,
        problems: tuple[Problem, ...] = (),
        retry_at: datetime | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.reason_code = reason_code
        self.problems = problems
        self.retry_at = retry_at


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
        while not self.stop.is_set():
            seen = waker.generation
            if not self.run_once():
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
            job_id = job.id
            attempt = ExportAttempt(job_id=job_id, worker=self.worker_id, outcome="running")
            session.add(attempt)
            session.flush()
            attempt_id = attempt.id
        self._run_job(job_id, attempt_id)
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

    # One job ----------------------------------------------------------------------------------

    def _run_job(self, job_id: int, attempt_id: int) -> None:
        try:
            status, detail = self._export(job_id)
            outcome = JobFinished(status, detail)
        except JobFinished as finished:
            outcome = finished
        except Exception as error:  # a bug must not lose the shipment: retry it, visibly
            log.exception("export job %s crashed", job_id)
            outcome = self._transient(job_id, f"internal error: {type(error).__name__}: {error}")
        self._finish(job_id, attempt_id, outcome)

    def _export(self, job_id: int) -> tuple[ExportStatus, str]:
        with self.runtime.db.transaction() as session:
            job = session.get_one(ExportJob, job_id)
            shop = session.get_one(Shop, job.shop_id)
            order_row = session.execute(
                select(Order).where(
                    Order.shop_id == job.shop_id, Order.shopify_order_id == job.shopify_order_id
                )
            ).scalar_one_or_none()
            session.expunge_all()
        if order_row is None or order_row.payload is None:
            raise JobFinished(ExportStatus.IGNORED, "waiting for the order's details from Shopify")
        try:
            order = parse_order(order_row.payload)
        except PayloadError as error:
            raise JobFinished(ExportStatus.FAILED, f"stored order unreadable: {error}") from None
        policy = policy_of(shop)
        overrides = Overrides(job.ship_without_imei, job.allow_reused_imeis)
        fulfillments = merge_fulfillments(order, order_row.fulfillments)
        decision = evaluate_order(order, fulfillments, policy, overrides)
        if isinstance(decision, Ignore):
            raise JobFinished(ExportStatus.IGNORED, decision.reason)
        if isinstance(decision, Block):
            raise _blocked(decision.problems)
        self._reserve_imeis(job, decision, overrides)
        bm_id = job.backmarket_order_id = decision.backmarket_order_id
        self._record(job_id, backmarket_order_id=bm_id)

        client = self._client(shop)
        bm_order = self._call(job, partial(client.get_order, bm_id), f"reading order {bm_id}")
        plan = plan_export(
            decision,
            bm_order,
            policy,
            overrides,
            already_shipped_by_us=job.shipped_at is not None,
            now=self.clock(),
        )
        if isinstance(plan, Block):
            raise _blocked(plan.problems)
        self._record(job_id, shipment=_shipment_record(plan, decision))
        for sku in plan.accept_skus:
            bm_order = self._call(job, partial(client.accept_lines, bm_id, sku), "accepting")
            job.accepted_skus = [*job.accepted_skus, sku]
            self._record(job_id, accepted_skus=job.accepted_skus)
        if plan.ship is not None:
            bm_order = self._call(job, partial(client.ship_order, bm_id, plan.ship), "shipping")
            self._record(job_id, shipped_at=self.clock())
        for line_id, imei in imei_patches_due(bm_order, plan.imeis_by_line, job.imei_line_ids):
            self._call(job, partial(client.set_orderline_imei, line_id, imei), "sending IMEI")
            job.imei_line_ids = [*job.imei_line_ids, line_id]
            self._record(job_id, imei_line_ids=job.imei_line_ids)
        shipped = "already shipped at Back Market" if plan.ship is None else "shipped"
        return ExportStatus.EXPORTED, f"{shipped}; {len(plan.imeis_by_line)} IMEI(s) on record"

    def _call(self, job: ExportJob, call: Callable[[], Any], doing: str) -> Any:
        """One Back Market request within the shop's budget; a failure ends the run."""
        with self.runtime.db.transaction() as session:
            wait = reserve_request(session, job.shop_id, self.clock().timestamp(), self.budget)
        if wait > 0:
            time.sleep(wait)  # our place in the shop's line is taken; other shops are unaffected
        try:
            return call()
        except BackMarketError as error:
            raise self._classify(job, error, doing) from None

    def _classify(self, job: ExportJob, error: BackMarketError, doing: str) -> JobFinished:
        message = f"Back Market error while {doing}: {error}"
        if needs_merchant_action(error):
            return JobFinished(
                ExportStatus.FAILED,
                "Back Market token rejected: update the Back Market API token in the app's "
                f"settings, then retry. ({error})",
                reason_code="backmarket_token_rejected",
            )
        if is_transient(error):
            if isinstance(error, RateLimitedError):
                self._throttle(job.shop_id, error.retry_after)
            return self._transient(job.id, message, retry_after(error))
        if isinstance(error, NotFoundError) and doing.startswith("reading order"):
            message = (
                f"Back Market has no order {job.backmarket_order_id or ''} for this account: "
                "check the order's Back Market id (note attribute or BM: tag) and the token."
            )
        return JobFinished(ExportStatus.FAILED, message, reason_code="backmarket_refused")

    def _transient(
        self, job_id: int, message: str, retry_after: float | None = None
    ) -> JobFinished:
        with self.runtime.db.transaction() as session:
            job = session.get_one(ExportJob, job_id)
            now = self.clock()
            if backoff.should_give_up(job.failing_since, now):
                return JobFinished(
                    ExportStatus.FAILED,
                    f"gave up after {job.attempts} attempts over two days: {message}",
                    reason_code="backmarket_unreachable",
                )
            retry_at = backoff.next_attempt_at(job.attempts, now, retry_after=retry_after)
        return JobFinished(ExportStatus.RETRY, message, retry_at=retry_at)

    def _throttle(self, shop_id: int, retry_after: float | None) -> None:
        """Pause this shop's exports only; other shops keep their own Back Market budget."""
        pause = timedelta(seconds=retry_after) if retry_after else DEFAULT_THROTTLE
        until = self.clock() + pause
        with self.runtime.db.transaction() as session:
            # The budget restarts after the block, so the shop does not burst straight into it.
            session.execute(
                update(Shop)
                .where(Shop.id == shop_id)
                .values(throttled_until=until, request_tat=until.timestamp())
            )

    def _reserve_imeis(self, job: ExportJob, ready: ReadyToExport, overrides: Overrides) -> None:
        """Claim the IMEIs for this order before sending them; another order's claim blocks."""
        with self.runtime.db.transaction() as session:
            if job.shipped_at is None and not job.imei_line_ids:
                # Nothing sent yet: IMEIs since removed from the tags are free again.
                session.execute(
                    delete(ExportedImei).where(
                        ExportedImei.shop_id == job.shop_id,
                        ExportedImei.shopify_order_id == job.shopify_order_id,
                        ExportedImei.imei.not_in(ready.imeis),
                    )
                )
            if not ready.imeis:
                return
            table = ExportedImei.__table__
            session.execute(
                dialect_insert(session, table)
                .values(
                    [
                        {
                            "shop_id": job.shop_id,
                            "imei": imei,
                            "shopify_order_id": job.shopify_order_id,
                            "order_name": job.order_name,
                            "recorded_at": self.clock(),
                        }
                        for imei in ready.imeis
                    ]
                )
                .on_conflict_do_nothing()
            )
            owners = session.execute(
                select(ExportedImei.imei, ExportedImei.order_name, ExportedImei.shopify_order_id)
                .where(ExportedImei.shop_id == job.shop_id)
                .where(ExportedImei.imei.in_(ready.imeis))
            ).all()
            elsewhere = {
                imei: name or str(order_id)
                for imei, name, order_id in owners
                if order_id != job.shopify_order_id
            }
            problems = reused_imei_problems(ready, elsewhere, overrides)
        if problems:
            raise _blocked(problems)

    def _client(self, shop: Shop) -> BackMarketClient:
        if self.client_factory is not None:
            return self.client_factory(shop)
        assert self.clients is not None  # set in __post_init__
        return self.clients.get(shop)

    # Bookkeeping ------------------------------------------------------------------------------

    def _record(self, job_id: int, **values: Any) -> None:
        """Commit a step at once (and refresh the lock: a heartbeat for stall detection)."""
        with self.runtime.db.transaction() as session:
            session.execute(
                update(ExportJob)
                .where(ExportJob.id == job_id)
                .values(locked_at=self.clock(), updated_at=self.clock(), **values)
            )

    def _finish(self, job_id: int, attempt_id: int, outcome: JobFinished) -> None:
        now = self.clock()
        with self.runtime.db.transaction() as session:
            job = session.get_one(ExportJob, job_id, with_for_update=True)
            attempt = session.get_one(ExportAttempt, attempt_id)
            attempt.finished_at, attempt.outcome = now, outcome.status
            attempt.detail = outcome.detail
            _apply_outcome(session, job, outcome, now)
        log.info("export %s (%s): %s: %s", job_id, job.order_name, outcome.status, outcome.detail)


def _apply_outcome(session: Session, job: ExportJob, outcome: JobFinished, now: datetime) -> None:
    job.locked_by, job.locked_at = None, None
    job.status = outcome.status
    job.reason_code = outcome.reason_code
    job.problems = [p.as_dict() for p in outcome.problems]
    job.last_error = None if outcome.status == ExportStatus.EXPORTED else outcome.detail
    if outcome.status == ExportStatus.RETRY:
        job.attempts += 1
        job.failing_since = job.failing_since or now
        job.run_after = outcome.retry_at or now
    else:
        job.attempts, job.failing_since = 0, None
    if outcome.status == ExportStatus.EXPORTED:
        job.exported_at = now
        job.rerun = False
    elif job.rerun and outcome.status != ExportStatus.RETRY:
        # The order changed during this run: look again with the newest snapshot.
        job.status, job.run_after, job.rerun = ExportStatus.PENDING, now, False
    session.flush()


def _blocked(problems: tuple[Problem, ...]) -> JobFinished:
    summary = "; ".join(p.message for p in problems[:3])
    more = f" (+{len(problems) - 3} more)" if len(problems) > 3 else ""
    return JobFinished(
        ExportStatus.BLOCKED,
        summary + more,
        reason_code=str(problems[0].code) if problems else None,
        problems=problems,
    )


def _shipment_record(plan: ExportPlan, ready: ReadyToExport) -> dict[str, Any]:
    """What the export sends, kept for the merchant and the operator."""
    tracking = ready.tracking
    return {
        "backmarket_order_id": ready.backmarket_order_id,
        "tracking_number": tracking.number,
        "tracking_url": tracking.url,
        "carrier": tracking.company,
        "shipper": plan.ship.shipper if plan.ship else None,
        "imeis_by_line": {str(k): v for k, v in plan.imeis_by_line.items()},
        "accept_skus": list(plan.accept_skus),
    }


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
