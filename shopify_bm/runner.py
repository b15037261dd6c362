"""Running one claimed export against Back Market, committing each step before the next.

Durability rules: a step done at Back Market is committed before the next request goes out;
every attempt starts by reading the Back Market order, so a retry after a crash, a timeout or a
5xx resumes instead of repeating (Back Market has no idempotency key, and IMEIs are write-once).
Cost rules: the transaction before each request both saves the previous step and takes the
request from the shop's budget, and the last step is saved with the outcome, so a typical
export is four short transactions.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial
from typing import Any

import httpx
from sqlalchemy import case, delete, insert, select, update
from sqlalchemy.orm import Session

from shopify_bm import backoff
from shopify_bm.backmarket.client import BackMarketClient
from shopify_bm.backmarket.errors import BackMarketError, NotFoundError, RateLimitedError
from shopify_bm.backmarket.retry import is_transient, needs_merchant_action, retry_after
from shopify_bm.budget import RequestBudget, reserve_request, restart_budget
from shopify_bm.db import dialect_insert
from shopify_bm.exports import (
    Block,
    ExportPlan,
    ExportPolicy,
    Ignore,
    Overrides,
    ReadyToExport,
    evaluate_order,
    imei_patches_due,
    plan_export,
    reused_imei_problems,
)
from shopify_bm.ingestion import store_order_snapshot
from shopify_bm.models import ExportAttempt, ExportedImei, ExportJob, ExportStatus, Order, Shop
from shopify_bm.runtime import Runtime
from shopify_bm.shipments import backmarket_order_id, merge_fulfillments
from shopify_bm.shopify.admin_api import fetch_order
from shopify_bm.shopify.auth import access_token_for, shopify_app
from shopify_bm.shopify.errors import ShopifyApiError, ShopifyTokenError
from shopify_bm.shopify.payloads import Order as OrderPayload
from shopify_bm.shopify.payloads import PayloadError, parse_order
from shopify_bm.shops import policy_of
from shopify_bm.tags import Problem

log = logging.getLogger(__name__)
# Back Market blocks a throttled client for 10 s when it gives no Retry-After (reference §6).
DEFAULT_THROTTLE = timedelta(seconds=10)


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


@dataclass
class Claimed:
    """A claimed job with everything running it needs, read in the claiming transaction."""

    job: ExportJob
    shop: Shop
    order: Order | None
    worker_id: str
    started_at: datetime


@dataclass
class ExportRun:
    """One attempt at one export; `execute` always ends by recording an outcome."""

    runtime: Runtime
    claimed: Claimed
    client_for: Callable[[Shop], BackMarketClient]
    clock: Callable[[], datetime]
    budget: RequestBudget
    shopify_http: httpx.Client | None = None  # the Admin API's transport (tests inject one)
    # Steps done at Back Market, saved by the next transaction (before any further request).
    _unsaved: dict[str, Any] = field(default_factory=dict)

    @property
    def job(self) -> ExportJob:
        """The job as claimed (its counters do not change during the run)."""
        return self.claimed.job

    def execute(self) -> JobFinished:
        """Run the export and record how it ended."""
        try:
            outcome = self._export()
        except JobFinished as finished:
            outcome = finished
        except Exception as error:  # a bug must not lose the shipment: retry it, visibly
            log.exception("export job %s crashed", self.job.id)
            outcome = self._transient(f"internal error: {type(error).__name__}: {error}")
        self._finish(outcome)
        return outcome

    def _export(self) -> JobFinished:
        job, shop, row = self.job, self.claimed.shop, self.claimed.order
        policy = policy_of(shop)
        if row is None or row.payload is None:
            order = self._fetch_order(policy)
        else:
            try:
                order = parse_order(row.payload)
            except PayloadError as error:
                raise JobFinished(
                    ExportStatus.FAILED, f"stored order unreadable: {error}"
                ) from None
        overrides = Overrides(job.ship_without_imei, job.allow_reused_imeis)
        fulfillments = merge_fulfillments(order, row.fulfillments if row else None)
        decision = evaluate_order(order, fulfillments, policy, overrides)
        if isinstance(decision, Ignore):
            raise JobFinished(ExportStatus.IGNORED, decision.reason)
        if isinstance(decision, Block):
            raise _blocked(decision.problems)

        bm_id = decision.backmarket_order_id
        self._unsaved["backmarket_order_id"] = bm_id
        client = self.client_for(shop)
        bm_order = self._call(
            partial(client.get_order, bm_id),
            f"reading order {bm_id}",
            prepare=partial(self._reserve_imeis, ready=decision, overrides=overrides),
        )
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
        self._unsaved["shipment"] = _shipment_record(plan, decision)
        accepted = list(job.accepted_skus)
        for sku in plan.accept_skus:
            bm_order = self._call(partial(client.accept_lines, bm_id, sku), "accepting")
            accepted.append(sku)
            self._unsaved["accepted_skus"] = list(accepted)
        if plan.ship is not None:
            bm_order = self._call(partial(client.ship_order, bm_id, plan.ship), "shipping")
            self._unsaved["shipped_at"] = self.clock()
        patched = list(job.imei_line_ids)
        for line_id, imei in imei_patches_due(bm_order, plan.imeis_by_line, patched):
            self._call(partial(client.set_orderline_imei, line_id, imei), "sending IMEI")
            patched.append(line_id)
            self._unsaved["imei_line_ids"] = list(patched)
        shipped = "already shipped at Back Market" if plan.ship is None else "shipped"
        detail = f"{shipped}; {len(plan.imeis_by_line)} IMEI(s) on record"
        return JobFinished(ExportStatus.EXPORTED, detail)

    def _fetch_order(self, policy: ExportPolicy) -> OrderPayload:
        """Only a fulfillment arrived so far: read the order (tags, lines) from the Admin API."""
        shop, settings = self.claimed.shop, self.runtime.settings
        if not shop.access_token:
            raise JobFinished(ExportStatus.IGNORED, "waiting for the order's details from Shopify")
        try:
            token = (
                access_token_for(
                    self.runtime.db,
                    shopify_app(settings),
                    shop.domain,
                    self.clock(),
                    http_client=self.shopify_http,
                )
                if settings.shopify_api_key and settings.webhook_secrets
                else shop.access_token  # single store with a fixed Admin API token
            )
            data = fetch_order(
                shop.domain,
                token,
                self.job.shopify_order_id,
                settings.shopify_api_version,
                http_client=self.shopify_http,
            )
            order = parse_order(data)
        except ShopifyTokenError as error:
            raise JobFinished(
                ExportStatus.BLOCKED,
                f"Shopify refused the app's access ({error}). Open the app once in the Shopify "
                "admin to reconnect it; the export then resumes by itself.",
                reason_code="shopify_token_rejected",
            ) from None
        except ShopifyApiError as error:
            if error.transient:
                raise self._transient(
                    f"Shopify: {error}", getattr(error, "retry_after", None)
                ) from None
            raise JobFinished(
                ExportStatus.FAILED, f"Shopify: {error}", reason_code="shopify_refused"
            ) from None
        except PayloadError as error:
            raise JobFinished(ExportStatus.FAILED, f"Shopify's order: {error}") from None
        bm_id = backmarket_order_id(order, policy.note_attribute, policy.tag_prefix)
        with self.runtime.db.transaction() as session:
            store_order_snapshot(session, shop.id, order, bm_id, self.clock())
        return order

    def _call(
        self,
        call: Callable[[], Any],
        doing: str,
        *,
        prepare: Callable[[Session], None] | None = None,
    ) -> Any:
        """One Back Market request: save the previous step, take budget, send; fail typed."""
        with self.runtime.db.transaction() as session:
            if prepare is not None:
                prepare(session)
            self._save(session)
            now = self.clock().timestamp()
            wait = reserve_request(session, self.job.shop_id, now, self.budget)
        if wait > 0:
            time.sleep(wait)  # our place in the shop's line is taken; other shops are unaffected
        try:
            return call()
        except BackMarketError as error:
            raise self._classify(error, doing) from None

    def _save(self, session: Session) -> None:
        # The heartbeat (locked_at) rides along, so stall detection sees a live worker.
        now = self.clock()
        session.execute(
            update(ExportJob)
            .where(ExportJob.id == self.job.id)
            .values(locked_at=now, updated_at=now, **self._unsaved)
        )
        self._unsaved = {}

    def _classify(self, error: BackMarketError, doing: str) -> JobFinished:
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
                self._throttle(error.retry_after)
            return self._transient(message, retry_after(error))
        if isinstance(error, NotFoundError) and doing.startswith("reading order"):
            bm_id = self._unsaved.get("backmarket_order_id") or self.job.backmarket_order_id
            message = (
                f"Back Market has no order {bm_id or ''} for this account: check the order's "
                "Back Market id (note attribute or BM: tag) and the token."
            )
        return JobFinished(ExportStatus.FAILED, message, reason_code="backmarket_refused")

    def _transient(self, message: str, retry_after: float | None = None) -> JobFinished:
        now = self.clock()
        if backoff.should_give_up(self.job.failing_since, now):
            return JobFinished(
                ExportStatus.FAILED,
                f"gave up after {self.job.attempts} attempts over two days: {message}",
                reason_code="backmarket_unreachable",
            )
        retry_at = backoff.next_attempt_at(self.job.attempts + 1, now, retry_after=retry_after)
        return JobFinished(ExportStatus.RETRY, message, retry_at=retry_at)

    def _throttle(self, retry_after: float | None) -> None:
        """Pause this shop's exports only; other shops keep their own Back Market budget."""
        pause = timedelta(seconds=retry_after) if retry_after else DEFAULT_THROTTLE
        until = self.clock() + pause
        with self.runtime.db.transaction() as session:
            # The budget restarts after the block, so the shop does not burst straight into it.
            session.execute(
                update(Shop).where(Shop.id == self.job.shop_id).values(throttled_until=until)
            )
            restart_budget(session, self.job.shop_id, until.timestamp())

    def _reserve_imeis(
        self, session: Session, *, ready: ReadyToExport, overrides: Overrides
    ) -> None:
        """Claim the IMEIs for this order before sending them; another order's claim blocks."""
        job = self.job
        nothing_sent = job.shipped_at is None and not job.imei_line_ids
        if nothing_sent and job.backmarket_order_id is not None:
            # An earlier run reserved IMEIs; those since removed from the tags are free again.
            session.execute(
                delete(ExportedImei).where(
                    ExportedImei.shop_id == job.shop_id,
                    ExportedImei.shopify_order_id == job.shopify_order_id,
                    ExportedImei.imei.not_in(ready.imeis),
                )
            )
        if not ready.imeis:
            return
        insert = dialect_insert(session, ExportedImei.__table__).values(
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
        # A no-op update on conflict makes RETURNING give the row's owner, ours or another's.
        owners = session.execute(
            insert.on_conflict_do_update(
                index_elements=["shop_id", "imei"], set_={"shop_id": insert.excluded.shop_id}
            ).returning(ExportedImei.imei, ExportedImei.order_name, ExportedImei.shopify_order_id)
        ).all()
        elsewhere = {
            imei: name or str(order_id)
            for imei, name, order_id in owners
            if order_id != job.shopify_order_id
        }
        problems = reused_imei_problems(ready, elsewhere, overrides)
        if problems:
            raise _blocked(problems)  # rolls the reservation back with the transaction

    def _finish(self, outcome: JobFinished) -> None:
        """Save the last steps and the outcome in one statement that cannot lose a `rerun`.

        A webhook may flag the running job `rerun` at any moment; deciding on that flag inside
        the UPDATE, not after reading it, means a change that arrives mid-run is never dropped.
        """
        now, job = self.clock(), self.job
        values: dict[str, Any] = {
            **self._unsaved,
            "locked_by": None,
            "locked_at": None,
            "updated_at": now,
            "reason_code": outcome.reason_code,
            "problems": [p.as_dict() for p in outcome.problems],
            "last_error": None if outcome.status == ExportStatus.EXPORTED else outcome.detail,
        }
        if outcome.status == ExportStatus.RETRY:
            values |= {
                "status": outcome.status,
                "attempts": job.attempts + 1,
                "failing_since": job.failing_since or now,
                "run_after": outcome.retry_at or now,
            }
        elif outcome.status == ExportStatus.EXPORTED:
            values |= {
                "status": outcome.status,
                "attempts": 0,
                "failing_since": None,
                "exported_at": now,
                "rerun": False,
            }
        else:
            # The order changed during this run: look again with the newest snapshot.
            rerun = ExportJob.rerun.is_(True)
            values |= {
                "status": case((rerun, str(ExportStatus.PENDING)), else_=str(outcome.status)),
                "run_after": case((rerun, now), else_=ExportJob.run_after),
                "rerun": False,
                "attempts": 0,
                "failing_since": None,
            }
        with self.runtime.db.transaction() as session:
            session.execute(update(ExportJob).where(ExportJob.id == job.id).values(**values))
            session.execute(
                insert(ExportAttempt).values(
                    job_id=job.id,
                    worker=self.claimed.worker_id,
                    started_at=self.claimed.started_at,
                    finished_at=now,
                    outcome=outcome.status,
                    detail=outcome.detail,
                )
            )
        log.info("export %s (%s): %s: %s", job.id, job.order_name, outcome.status, outcome.detail)


def load_claimed(session: Session, job: ExportJob, worker_id: str, now: datetime) -> Claimed:
    """Read the shop and order snapshot with the claim (one query), detached for the run."""
    shop, order = session.execute(
        select(Shop, Order)
        .outerjoin(
            Order,
            (Order.shop_id == Shop.id) & (Order.shopify_order_id == job.shopify_order_id),
        )
        .where(Shop.id == job.shop_id)
    ).one()
    session.expunge_all()
    return Claimed(job, shop, order, worker_id, now)


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
