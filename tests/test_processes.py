"""Where the path crosses real processes: `shopify-bm worker` and `serve` as the console script runs
them, killed and stopped with real signals, against the Back Market simulator over sockets.

The in-process export logic is covered by test_worker.py; these tests are about what only real
processes show: a SIGKILL in the middle of an export, SIGTERM, the embedded worker of `serve`,
and what the processes write to their logs.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select
from stdnum import luhn

from conftest import ENCRYPTION_KEY, TEST_BM_TOKEN, TEST_SECRET, LiveServer, make_settings
from shopify_bm.backmarket.simulator import BackMarketSimulator, Faults, SimulatorServer
from shopify_bm.models import ExportJob, ExportStatus
from shopify_bm.runtime import Runtime
from shopify_bm.settings import Settings
from support.processes import (
    Processes,
    app_env,
    exports_json,
    free_port,
    run_cli,
    wait_for_http,
    wait_until,
)
from support.shopify import order_payload, post_webhook

pytestmark = pytest.mark.slow

SHOPIFY_ORDER = 6_100_000_000_000
BM_ORDER = 82_000_000
PHONE, SECOND_PHONE = "IP13-128-BLK", "SM-S21"


def imei(n: int) -> str:
    """The n-th of a series of distinct, valid IMEIs (Luhn check digit)."""
    body = f"35{n:012d}"
    return body + luhn.calc_check_digit(body)


def imei_tags(imeis: dict[str, str]) -> list[str]:
    return [f"{sku}:IMEI{value}" for sku, value in imeis.items()]


@pytest.fixture
def simulator() -> Iterator[SimulatorServer]:
    with SimulatorServer(BackMarketSimulator([TEST_BM_TOKEN])) as server:
        yield server


@pytest.fixture
def settings(database_url: str, tmp_path: Path, simulator: SimulatorServer) -> Settings:
    """The in-process web app (used to take webhooks) talks to the same simulator."""
    return make_settings(database_url, tmp_path, backmarket_api_url=simulator.url)


@pytest.fixture
def procs(tmp_path: Path) -> Iterator[Processes]:
    logs = tmp_path / "logs"
    logs.mkdir()
    with Processes(logs) as processes:
        yield processes


def export_statuses(runtime: Runtime) -> dict[int, str]:
    """Shopify order id -> export status, read from the database the processes share."""
    with runtime.db.transaction() as session:
        rows = session.execute(select(ExportJob.shopify_order_id, ExportJob.status)).all()
    return {order_id: str(status) for order_id, status in rows}


def not_exported(runtime: Runtime) -> dict[int, str]:
    return {k: v for k, v in export_statuses(runtime).items() if v != ExportStatus.EXPORTED}


def test_killed_workers_are_replaced_and_no_order_ships_twice(
    runtime: Runtime,
    live_server: LiveServer,
    simulator: SimulatorServer,
    procs: Processes,
    database_url: str,
    tmp_path: Path,
) -> None:
    sim = simulator.simulator
    orders = 30
    expected: dict[int, dict[str, str]] = {}  # Back Market order -> SKU -> IMEI
    for n in range(orders):
        two_lines = n % 2 == 1  # ship POST then one PATCH per line; else accept, ship with IMEI
        skus = [PHONE, SECOND_PHONE] if two_lines else [PHONE]
        bm_id = BM_ORDER + n
        sim.add_order(TEST_BM_TOKEN, bm_id, [(sku, 1) for sku in skus], state=3 if two_lines else 1)
        expected[bm_id] = {sku: imei(2 * n + i) for i, sku in enumerate(skus)}
        payload = order_payload(
            SHOPIFY_ORDER + n,
            lines=[(sku, 1) for sku in skus],
            imeis=imei_tags(expected[bm_id]),
            backmarket_order_id=bm_id,
        )
        response = post_webhook(live_server.url, "orders/fulfilled", payload)
        assert response.status_code == 200, response.text
    # Every request in flight for a while, and unevenly, so the kill finds exports at every step.
    sim.set_faults(Faults(latency_ms=150, jitter_ms=100))

    patient = app_env(database_url, tmp_path, simulator.url, SHOPIFY_BM_JOB_LOCK_TIMEOUT_SECONDS=60)
    doomed = [procs.shopify_bm(f"worker-{i}", ["worker"], patient) for i in (1, 2)]
    wait_until(
        lambda: len(sim.stats().ships) >= orders // 3,
        30,
        lambda: f"the workers shipped {len(sim.stats().ships)} orders\n{procs.report()}",
        interval=0.01,
    )
    for worker in doomed:
        worker.signal(signal.SIGKILL)
    for worker in doomed:
        assert worker.wait(10) == -signal.SIGKILL

    shipped_before_restart = len(sim.stats().ships)
    assert shipped_before_restart < orders, "every order shipped before the kill: add latency"
    left_running = [k for k, v in export_statuses(runtime).items() if v == ExportStatus.RUNNING]
    assert left_running, "no export was in flight when the workers were killed"

    # Replacements that consider a job stalled after 2 s without a heartbeat.
    hasty = app_env(database_url, tmp_path, simulator.url, SHOPIFY_BM_JOB_LOCK_TIMEOUT_SECONDS=2)
    replacements = [procs.shopify_bm(f"worker-{i}-restarted", ["worker"], hasty) for i in (1, 2)]
    wait_until(
        lambda: not not_exported(runtime),
        45,
        lambda: f"exports not done: {not_exported(runtime)}\n{procs.report()}",
        interval=0.1,
    )
    for worker in replacements:
        worker.signal(signal.SIGTERM)
    for worker in replacements:
        assert worker.wait(10) == 0, procs.report()

    stats = sim.stats()
    assert stats.orders_shipped_twice == []
    assert stats.ships == dict.fromkeys(expected, 1)
    assert stats.reship_rejections == {}  # a resumed export reads the order first, never re-POSTs
    assert stats.lines_patched_twice == []
    for bm_id, imeis in expected.items():
        order = sim.order(bm_id)
        assert order is not None
        assert order["state"] == 9, bm_id
        assert {line["listing"]: line["imei"] for line in order["orderlines"]} == imeis, bm_id
        for line in order["orderlines"]:
            assert stats.imei_writes.get(line["id"]) == 1, (bm_id, line["id"])
    recovered = "".join(worker.output() for worker in replacements)
    assert "left by a stopped worker" in recovered  # the stalled jobs really were taken over
    assert "Traceback" not in recovered, procs.report()


def test_sigterm_finishes_the_running_exports_and_stops(
    runtime: Runtime,
    live_server: LiveServer,
    simulator: SimulatorServer,
    procs: Processes,
    database_url: str,
    tmp_path: Path,
) -> None:
    sim = simulator.simulator
    bm_ids = {SHOPIFY_ORDER + n: BM_ORDER + n for n in range(3)}
    for n, (order_id, bm_id) in enumerate(bm_ids.items()):
        sim.add_order(TEST_BM_TOKEN, bm_id, [(PHONE, 1)], state=1)  # GET, accept, ship: 3 s
        payload = order_payload(
            order_id, imeis=imei_tags({PHONE: imei(n)}), backmarket_order_id=bm_id
        )
        assert post_webhook(live_server.url, "orders/fulfilled", payload).status_code == 200
    sim.set_faults(Faults(latency_ms=1000))
    # Two worker threads: two exports in flight, the third waits for a free worker.
    env = app_env(database_url, tmp_path, simulator.url, SHOPIFY_BM_WORKER_CONCURRENCY=2)
    worker = procs.shopify_bm("worker", ["worker"], env)

    # The first answers (the GETs) come after 1 s: accept and ship are still to do.
    wait_until(sim.requests, 20, lambda: f"no request reached Back Market\n{procs.report()}")
    running = export_statuses(runtime)
    assert sorted(running.values()) == ["pending", "running", "running"], running
    sent = time.monotonic()
    worker.signal(signal.SIGTERM)
    status = worker.wait(10)
    took = time.monotonic() - sent

    assert status == 0, f"exit status {status} {took:.1f} s after SIGTERM\n{procs.report()}"
    assert took < 6, f"took {took:.1f} s to stop"
    in_flight = [k for k, v in running.items() if v == ExportStatus.RUNNING]
    [waiting] = [k for k, v in running.items() if v == ExportStatus.PENDING]
    after = export_statuses(runtime)
    assert after == {  # the exports in hand finished; none was started once the stop was asked
        **dict.fromkeys(in_flight, ExportStatus.EXPORTED),
        waiting: ExportStatus.PENDING,
    }
    assert sim.stats().ships == {bm_ids[k]: 1 for k in in_flight}
    assert [r.path for r in sim.requests() if str(bm_ids[waiting]) in r.path] == []
    log = worker.output()
    assert "received SIGTERM" in log
    assert "stopped" in log.split("received SIGTERM", 1)[1]


def test_serve_exports_a_webhook_with_its_embedded_worker(
    simulator: SimulatorServer, procs: Processes, database_url: str, tmp_path: Path
) -> None:
    sim = simulator.simulator
    sim.add_order(TEST_BM_TOKEN, BM_ORDER, [(PHONE, 1)], state=3)
    port = free_port()
    env = app_env(database_url, tmp_path, simulator.url, PORT=port)
    serve = procs.shopify_bm("serve", ["serve"], env)  # a fresh database: serve migrates it
    base_url = f"http://127.0.0.1:{port}"
    wait_for_http(f"{base_url}/healthz", serve, procs)

    posted = time.monotonic()
    payload = order_payload(imeis=imei_tags({PHONE: imei(1)}), backmarket_order_id=BM_ORDER)
    response = post_webhook(base_url, "orders/fulfilled", payload)
    assert response.status_code == 200, response.text
    wait_until(
        lambda: sim.stats().ships.get(BM_ORDER),
        5,
        lambda: f"the ship request never reached Back Market\n{procs.report()}",
        interval=0.01,
    )
    latency = time.monotonic() - posted

    serve.signal(signal.SIGTERM)
    assert serve.wait(10) == 0, procs.report()
    [ship] = [r for r in sim.requests() if r.method == "POST"]
    assert ship.body["new_state"] == 3
    assert ship.body["imei"] == imei(1)
    [export] = exports_json(env, tmp_path)
    assert (export["status"], export["backmarket_order_id"]) == ("exported", BM_ORDER)
    assert latency < 5


def test_the_back_market_token_never_reaches_the_logs(
    simulator: SimulatorServer, procs: Processes, database_url: str, tmp_path: Path
) -> None:
    """A run with a token Back Market rejects (401), then the right one: no secret is logged."""
    sim = simulator.simulator
    sim.add_order(TEST_BM_TOKEN, BM_ORDER, [(PHONE, 1)], state=3)
    revoked = "cmV2b2tlZC10b2tlbjpCTVQtZmVkY2JhOTg3NjU0MzIxMA=="
    port = free_port()
    env = app_env(database_url, tmp_path, simulator.url, PORT=port, BACKMARKET_API_TOKEN=revoked)
    serve = procs.shopify_bm("serve", ["serve"], env)
    base_url = f"http://127.0.0.1:{port}"
    wait_for_http(f"{base_url}/healthz", serve, procs)
    payload = order_payload(imeis=imei_tags({PHONE: imei(1)}), backmarket_order_id=BM_ORDER)
    assert post_webhook(base_url, "orders/fulfilled", payload).status_code == 200
    wait_until(
        lambda: sim.stats().statuses.get(401),
        10,
        lambda: f"Back Market never answered 401\n{procs.report()}",
    )
    serve.signal(signal.SIGTERM)
    assert serve.wait(10) == 0, procs.report()
    listed = run_cli(["exports", "list", "--json"], env, tmp_path)
    assert '"backmarket_token_rejected"' in listed.stdout, listed.stdout + listed.stderr

    # The merchant pastes the right token; a worker picks it up, the operator retries.
    fixed = app_env(database_url, tmp_path, simulator.url)
    worker = procs.shopify_bm("worker", ["worker"], fixed)
    retried = run_cli(["exports", "retry", str(BM_ORDER)], fixed, tmp_path)
    assert retried.returncode == 0, retried.stdout + retried.stderr
    wait_until(
        lambda: sim.stats().ships.get(BM_ORDER),
        10,
        lambda: f"the retried export never shipped\n{procs.report()}",
    )
    worker.signal(signal.SIGTERM)
    assert worker.wait(10) == 0, procs.report()
    shown = run_cli(["exports", "show", str(BM_ORDER), "--json"], fixed, tmp_path)

    logs = {process.name: process.output() for process in procs.processes}
    for name, done in (("list", listed), ("retry", retried), ("show", shown)):
        logs[f"exports {name}"] = done.stdout + done.stderr
    assert "token rejected" in logs["serve"]  # the failure itself was logged
    assert "401" in logs["serve"]
    for name, text in logs.items():
        for secret in (revoked, TEST_BM_TOKEN, TEST_SECRET, ENCRYPTION_KEY):
            assert secret not in text, f"a secret appears in the output of {name}"
