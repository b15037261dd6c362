"""The export worker end to end: real webhook over HTTP, real database, the Back Market simulator
over sockets. Time is a controllable clock so backoffs pass instantly."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from conftest import TEST_BM_TOKEN, LiveServer, make_settings
from shopify_bm.backmarket.simulator import BackMarketSimulator, Faults, SimulatorServer
from shopify_bm.models import ExportJob, ExportStatus, utcnow
from shopify_bm.operations import retry_export
from shopify_bm.queue import next_due_at
from shopify_bm.runtime import Runtime
from shopify_bm.settings import Settings
from shopify_bm.worker import Worker
from support.shopify import fulfillment_payload, later, order_payload, post_webhook

IMEIS = ["356938035643809", "490154203237518", "353918050543214", "352099001761481"]
BM_ORDER = 81_234_567


@dataclass
class Clock:
    """Real time plus an offset the test moves forward to skip backoffs."""

    offset: timedelta = field(default_factory=timedelta)

    def __call__(self) -> datetime:
        return utcnow() + self.offset


@dataclass
class Env:
    runtime: Runtime
    simulator: BackMarketSimulator
    server: LiveServer
    worker: Worker
    clock: Clock

    def post(self, topic: str, payload: dict[str, Any], **kwargs: Any) -> None:
        response = post_webhook(self.server.url, topic, payload, **kwargs)
        assert response.status_code == 200, response.text

    def drain(self, max_runs: int = 500) -> int:
        """Run jobs until none is queued, jumping the clock over backoffs; returns runs."""
        runs = 0
        while runs < max_runs:
            if self.worker.run_once():
                runs += 1
                continue
            with self.runtime.db.transaction() as session:
                due = next_due_at(session, self.clock())
            if due is None:
                return runs
            self.clock.offset += max(due - self.clock(), timedelta(0)) + timedelta(seconds=11)
        raise AssertionError("the queue did not drain")

    def job(self, order_id: int = 5_612_345_678_901) -> ExportJob:
        with self.runtime.db.transaction() as session:
            return session.execute(
                select(ExportJob).where(ExportJob.shopify_order_id == order_id)
            ).scalar_one()

    def writes(self) -> list[tuple[str, str, dict[str, Any] | None]]:
        return [
            (r.method, r.path, r.body)
            for r in self.simulator.requests()
            if r.method in ("POST", "PATCH") and r.path.startswith("/ws/")
        ]


@pytest.fixture
def simulator() -> Iterator[SimulatorServer]:
    with SimulatorServer(BackMarketSimulator([TEST_BM_TOKEN])) as server:
        yield server


@pytest.fixture
def settings(database_url: str, tmp_path: Path, simulator: SimulatorServer) -> Settings:
    """Talk to the simulator, with a short timeout so injected hangs cost little."""
    return make_settings(
        database_url,
        tmp_path,
        backmarket_api_url=simulator.url,
        SHOPIFY_BM_BACKMARKET_TIMEOUT_SECONDS=0.5,
    )


@pytest.fixture
def env(runtime: Runtime, simulator: SimulatorServer, live_server: LiveServer) -> Iterator[Env]:
    clock = Clock()
    worker = Worker(runtime, worker_id="test-worker", clock=clock)
    yield Env(runtime, simulator.simulator, live_server, worker, clock)
    worker.close()


def tags(*pairs: tuple[str, str]) -> list[str]:
    return [f"{sku}:IMEI{imei}" for sku, imei in pairs]


def test_single_line_order_ships_with_the_imei_in_one_post(env: Env) -> None:
    env.simulator.add_order(TEST_BM_TOKEN, BM_ORDER, [("IP13-128-BLK", 1)])
    env.post("orders/fulfilled", order_payload(imeis=tags(("IP13-128-BLK", IMEIS[0]))))

    env.drain()

    assert env.job().status == ExportStatus.EXPORTED
    writes = env.writes()
    assert [(m, p) for m, p, _ in writes] == [
        ("POST", f"/ws/orders/{BM_ORDER}"),  # accept (line in state 1)
        ("POST", f"/ws/orders/{BM_ORDER}"),  # ship
    ]
    assert writes[0][2] == {"order_id": BM_ORDER, "new_state": 2, "sku": "IP13-128-BLK"}
    ship = writes[1][2]
    assert ship is not None
    assert ship["new_state"] == 3
    assert ship["imei"] == IMEIS[0]
    assert ship["tracking_number"] == "6A12345678901"
    assert ship["shipper"] == "Colissimo"
    order = env.simulator.order(BM_ORDER)
    assert order is not None
    assert order["state"] == 9
    assert order["orderlines"][0]["imei"] == IMEIS[0]


def test_two_line_order_ships_then_patches_each_line(env: Env) -> None:
    env.simulator.add_order(TEST_BM_TOKEN, BM_ORDER, [("IP13-128-BLK", 1), ("SM-S21", 1)], state=3)
    payload = order_payload(
        lines=[("IP13-128-BLK", 1), ("sm-s21", 1)],
        imeis=tags(("IP13-128-BLK", IMEIS[0]), ("SM-S21", IMEIS[1])),
    )
    env.post("orders/fulfilled", payload)

    env.drain()

    assert env.job().status == ExportStatus.EXPORTED
    writes = env.writes()
    assert [m for m, _, _ in writes] == ["POST", "PATCH", "PATCH"]
    assert "imei" not in (writes[0][2] or {})
    order = env.simulator.order(BM_ORDER)
    assert order is not None
    assert {line["listing"]: line["imei"] for line in order["orderlines"]} == {
        "IP13-128-BLK": IMEIS[0],
        "SM-S21": IMEIS[1],
    }


def test_missing_imei_blocks_then_the_fixed_tag_exports_by_itself(env: Env) -> None:
    env.simulator.add_order(TEST_BM_TOKEN, BM_ORDER, [("IP13-128-BLK", 1)], state=3)
    order = order_payload(imeis=[])
    env.post("orders/fulfilled", order)
    env.drain()

    job = env.job()
    assert job.status == ExportStatus.BLOCKED
    assert [p["code"] for p in job.problems] == ["missing_imei"]
    assert "IP13-128-BLK" in job.problems[0]["message"]
    assert env.simulator.requests() == []  # nothing was sent to Back Market

    fixed = later(order)
    fixed["tags"] = f"IP13-128-BLK:IMEI{IMEIS[0]}"
    env.post("orders/updated", fixed)
    env.drain()

    assert env.job().status == ExportStatus.EXPORTED
    assert env.simulator.stats().ships == {BM_ORDER: 1}


def test_duplicates_and_racing_topics_ship_exactly_once(env: Env) -> None:
    env.simulator.add_order(TEST_BM_TOKEN, BM_ORDER, [("IP13-128-BLK", 1)])
    order = order_payload(imeis=tags(("IP13-128-BLK", IMEIS[0])))
    for _ in range(5):
        env.post("orders/fulfilled", order, webhook_id="delivery-1")
    env.post("fulfillments/create", fulfillment_payload(order))
    env.post("orders/updated", later(order))
    env.drain()
    env.post("orders/updated", later(order, 120))  # after export: changes nothing at BM
    env.drain()

    stats = env.simulator.stats()
    assert stats.ships == {BM_ORDER: 1}
    assert stats.reship_rejections == {}
    assert env.job().status == ExportStatus.EXPORTED


def test_back_market_failures_end_exported_and_none_twice(env: Env) -> None:
    orders = 12
    for n in range(orders):
        env.simulator.add_order(TEST_BM_TOKEN, BM_ORDER + n, [("IP13-128-BLK", 1), ("SM-S21", 1)])
    env.simulator.set_faults(
        Faults(error_rate=0.3, timeout_rate=0.05, ambiguous_rate=0.1, hang_seconds=1.0)
    )
    env.simulator.force_429(5)
    for n in range(orders):
        imeis = tags(("IP13-128-BLK", IMEIS[0]), ("SM-S21", IMEIS[1]))
        payload = order_payload(
            5_612_345_678_901 + n,
            lines=[("IP13-128-BLK", 1), ("SM-S21", 1)],
            imeis=imeis,
            backmarket_order_id=BM_ORDER + n,
        )
        env.post("orders/fulfilled", payload)
    with env.runtime.db.transaction() as session:
        for job in session.execute(select(ExportJob)).scalars():
            job.allow_reused_imeis = True  # the same two phones on every order, on purpose

    env.drain(max_runs=2000)

    with env.runtime.db.transaction() as session:
        statuses = [j.status for j in session.execute(select(ExportJob)).scalars()]
    assert statuses == [ExportStatus.EXPORTED] * orders
    stats = env.simulator.stats()
    assert stats.orders_shipped_twice == []
    assert stats.lines_patched_twice == []
    assert sorted(stats.ships) == [BM_ORDER + n for n in range(orders)]
    assert stats.statuses.get(429, 0) >= 1  # the burst was really met


def test_rate_limited_shop_is_paused_and_resumes(env: Env) -> None:
    env.simulator.add_order(TEST_BM_TOKEN, BM_ORDER, [("IP13-128-BLK", 1)], state=3)
    env.simulator.force_429(1)
    env.post("orders/fulfilled", order_payload(imeis=tags(("IP13-128-BLK", IMEIS[0]))))

    assert env.worker.run_once()
    job = env.job()
    assert job.status == ExportStatus.RETRY
    assert "rate" in (job.last_error or "").lower() or "429" in (job.last_error or "")
    assert not env.worker.run_once()  # the shop is paused: nothing is claimable yet

    env.drain()
    assert env.job().status == ExportStatus.EXPORTED


@pytest.mark.parametrize(
    ("bm_lines", "bm_state", "code"),
    [
        pytest.param([("IP13-128-BLK", 2)], 3, "backmarket_line_quantity", id="quantity-2-line"),
        pytest.param([("IP13-128-BLK", 1)], 0, "backmarket_order_not_shippable", id="not-paid"),
        pytest.param([("IP13-128-BLK", 1)], 10, "backmarket_order_not_shippable", id="pending"),
    ],
)
def test_back_market_side_blocks(env: Env, bm_lines, bm_state, code) -> None:
    env.simulator.add_order(TEST_BM_TOKEN, BM_ORDER, bm_lines, state=bm_state)
    quantity = bm_lines[0][1]
    imeis = tags(*[("IP13-128-BLK", i) for i in IMEIS[:quantity]])
    env.post("orders/fulfilled", order_payload(lines=[("IP13-128-BLK", quantity)], imeis=imeis))

    env.drain()

    job = env.job()
    assert job.status == ExportStatus.BLOCKED
    assert code in [p["code"] for p in job.problems]
    assert env.writes() == []


def test_no_tracking_number_blocks_before_any_call(env: Env) -> None:
    env.simulator.add_order(TEST_BM_TOKEN, BM_ORDER, [("IP13-128-BLK", 1)], state=3)
    env.post(
        "orders/fulfilled",
        order_payload(imeis=tags(("IP13-128-BLK", IMEIS[0])), tracking_number=None),
    )
    env.drain()

    job = env.job()
    assert (job.status, job.reason_code) == (ExportStatus.BLOCKED, "no_tracking")
    assert env.simulator.requests() == []


def test_imei_already_exported_blocks_until_the_merchant_allows_it(env: Env) -> None:
    env.simulator.add_order(TEST_BM_TOKEN, BM_ORDER, [("IP13-128-BLK", 1)], state=3)
    env.simulator.add_order(TEST_BM_TOKEN, BM_ORDER + 1, [("IP13-128-BLK", 1)], state=3)
    same_phone = tags(("IP13-128-BLK", IMEIS[0]))
    env.post("orders/fulfilled", order_payload(1001, imeis=same_phone))
    env.drain()
    env.post(
        "orders/fulfilled",
        order_payload(1002, imeis=same_phone, backmarket_order_id=BM_ORDER + 1),
    )
    env.drain()

    second = env.job(1002)
    assert second.status == ExportStatus.BLOCKED
    assert second.reason_code == "imei_already_exported"
    assert env.simulator.stats().ships == {BM_ORDER: 1}

    with env.runtime.db.transaction() as session:
        retry_export(session, "1002", env.clock(), allow_reused_imeis=True)
    env.drain()
    assert env.job(1002).status == ExportStatus.EXPORTED


def test_ship_without_imei_override_sends_no_imei(env: Env) -> None:
    env.simulator.add_order(TEST_BM_TOKEN, BM_ORDER, [("IP13-128-BLK", 1)], state=3)
    env.post("orders/fulfilled", order_payload(imeis=[]))
    env.drain()
    assert env.job().status == ExportStatus.BLOCKED

    with env.runtime.db.transaction() as session:
        retry_export(session, "5612345678901", env.clock(), ship_without_imei=True, actor="test")
    env.drain()

    job = env.job()
    assert job.status == ExportStatus.EXPORTED
    assert "ship without IMEI" in (job.override_note or "")
    [(_, _, body)] = env.writes()
    assert body is not None
    assert "imei" not in body


def test_order_already_shipped_at_back_market_is_not_shipped_again(env: Env) -> None:
    env.simulator.add_order(TEST_BM_TOKEN, BM_ORDER, [("IP13-128-BLK", 1)], state=9)
    env.post("orders/fulfilled", order_payload(imeis=tags(("IP13-128-BLK", IMEIS[0]))))

    env.drain()

    assert env.job().status == ExportStatus.EXPORTED
    assert [m for m, _, _ in env.writes()] == ["PATCH"]  # only the missing IMEI
    assert env.simulator.stats().ships == {}


@pytest.mark.parametrize(
    ("setup", "reason"),
    [
        pytest.param("unknown-order", "backmarket_refused", id="404-order"),
        pytest.param("bad-token", "backmarket_token_rejected", id="401-token"),
    ],
)
def test_permanent_failures_fail_with_the_reason(env: Env, setup, reason, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    if setup == "bad-token":
        env.simulator.add_order(TEST_BM_TOKEN, BM_ORDER, [("IP13-128-BLK", 1)], state=3)
        with env.runtime.db.transaction() as session:
            from shopify_bm.models import Shop

            session.execute(select(Shop)).scalar_one().backmarket_token = "revoked-token-value"
    env.post("orders/fulfilled", order_payload(imeis=tags(("IP13-128-BLK", IMEIS[0]))))

    env.drain()

    job = env.job()
    assert (job.status, job.reason_code) == (ExportStatus.FAILED, reason)
    assert job.attempts == 0
    assert env.writes() == []
    for secret in (TEST_BM_TOKEN, "revoked-token-value"):
        assert secret not in caplog.text
        assert secret not in (job.last_error or "")


def test_fulfillment_alone_fetches_the_order_from_shopify_then_exports(env: Env) -> None:
    from shopify_bm.models import Shop
    from support.shopify_fake import graphql_order, running_fake

    order_id = 5_812_345_678_901
    env.simulator.add_order(TEST_BM_TOKEN, BM_ORDER, [("IP13-128-MID", 1)], state=3)
    with env.runtime.db.transaction() as session:
        session.execute(select(Shop)).scalar_one().access_token = "shpat_single_store"
    with running_fake() as shopify:
        shopify.fake.valid_access_tokens.add("shpat_single_store")
        shopify.fake.orders[f"gid://shopify/Order/{order_id}"] = graphql_order(
            order_id, backmarket_order_id=str(BM_ORDER)
        )
        env.worker.shopify_http = shopify.client
        fulfillment = fulfillment_payload(order_payload(order_id))
        env.post("fulfillments/create", fulfillment)  # no orders/* webhook at all

        env.drain()

        job = env.job(order_id)
        assert job.status == ExportStatus.EXPORTED, job.last_error
        assert len(shopify.fake.graphql_requests) == 1
    [(_, _, ship)] = env.writes()
    assert ship is not None
    assert ship["imei"] == "356938035643809"  # from the tags Shopify returned


def test_fulfillment_alone_waits_when_the_app_cannot_read_orders(env: Env) -> None:
    env.post("fulfillments/create", fulfillment_payload(order_payload()))

    assert not env.worker.run_once()  # no token to read the order: nothing queued yet
    env.post("orders/fulfilled", order_payload(imeis=[]))
    env.drain()
    assert env.job().status == ExportStatus.BLOCKED  # the order itself then decides


def test_worker_keeps_running_through_a_database_outage(runtime: Runtime, monkeypatch) -> None:
    from sqlalchemy.exc import OperationalError

    worker = Worker(runtime, worker_id="outage")
    calls: list[int] = []

    def run_once() -> bool:
        calls.append(1)
        if len(calls) < 3:
            raise OperationalError("SELECT 1", {}, ConnectionRefusedError("database is down"))
        worker.stop.set()
        return False

    monkeypatch.setattr(worker, "run_once", run_once)
    monkeypatch.setattr(worker.stop, "wait", lambda seconds: None)  # no real back-off sleep
    worker.run()

    assert len(calls) == 3  # two failures survived, then it went on working
