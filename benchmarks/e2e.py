"""End-to-end latency: from a webhook's arrival to the ship request reaching Back Market.

Real processes: the web tier, the worker, the simulator (100 ms per request, so the GET before
the ship POST alone costs 100 ms). The measured shop fulfils one order a second (a busy
warehouse: 300 orders in 5 minutes). Idle: nothing else to do. Busy: the same while the pool
drains a backlog of 3,000 exports of 50 other shops; fair claiming serves the shop that waited
longest first, so a shop with a modest flow is not queued behind the backlog.
PostgreSQL runs gunicorn and a worker process woken by LISTEN/NOTIFY; SQLite runs
`shopify-bm serve`, web and worker in one process woken in-process.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from benchmarks import fleet
from benchmarks.drain import simulator_requests, wait_drained
from benchmarks.harness import (
    BIN,
    BM_TOKEN,
    SECRET,
    SHOP,
    Process,
    Report,
    app_env,
    database,
    free_port,
    loadgen,
    order_template,
    postgres_available,
    start,
    start_simulator,
    start_web,
    start_workers,
    wait_http,
)

PROBE_FIRST_BM = 80_000_000
PROBE_FIRST_ORDER = 7_100_000_000_000


def latencies(sent: dict[str, float], records: list[dict[str, Any]]) -> list[float]:
    """Seconds from each acknowledged webhook to its ship POST at the simulator."""
    shipped: dict[int, float] = {}
    for record in records:
        body = record.get("body") or {}
        if record["method"] == "POST" and body.get("new_state") == 3:
            bm_id = int(record["path"].rsplit("/", 1)[1].split("?")[0])
            shipped.setdefault(bm_id, record["received_wall"])
    out = []
    for order_id, sent_at in sent.items():
        bm_id = PROBE_FIRST_BM + int(order_id) - PROBE_FIRST_ORDER
        if bm_id in shipped:
            out.append(shipped[bm_id] - sent_at)
    return out


def _pct(values: list[float], p: float) -> float | None:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p * len(ordered)))] * 1000 if ordered else None


def measure(kind: str, backlog: int, probes: int, rate: float, latency_ms: int) -> dict[str, Any]:
    simulator = start_simulator("--latency-ms", str(latency_ms), "--log-size", "400000")
    assert simulator.url is not None
    procs: list[Process] = []
    try:
        with tempfile.TemporaryDirectory() as folder, database(kind) as db:
            env = app_env(
                db,
                Path(folder) / "instance",
                BACKMARKET_API_URL=simulator.url,
                SHOPIFY_BM_WORKER_POLL_SECONDS="1",
            )
            fleet.migrate(env)
            httpx.post(simulator.url + "/_sim/sellers", json={"token": BM_TOKEN})
            fleet.seed_backmarket_orders(simulator.url, [BM_TOKEN] * probes, PROBE_FIRST_BM)
            if backlog:
                fleet.seed(db, simulator.url, 50, backlog // 50)
            if kind == "postgresql":
                web = start_web(env, workers=2, threads=4)
                procs = [web, *start_workers(env, 1, 16)]
            else:
                port = free_port()
                web = start(
                    "serve",
                    [str(BIN / "shopify-bm"), "serve"],
                    {**env, "PORT": str(port), "SHOPIFY_BM_WORKER_CONCURRENCY": "16"},
                )
                web.url = f"http://127.0.0.1:{port}"
                wait_http(web.url + "/healthz", web)
                procs = [web]
            assert web.url is not None
            time.sleep(1.0)  # workers listening
            result = loadgen(
                url=web.url + "/webhooks/orders",
                template=order_template(Path(folder)),
                secret=SECRET,
                shop=SHOP,
                concurrency=4,
                rate=rate,
                count=probes,
                duration=probes / rate + 5,
                first_order_id=PROBE_FIRST_ORDER,
                first_backmarket_id=PROBE_FIRST_BM,
                keep_ids=True,
                run_id=f"e2e-{kind}-{backlog}",
            )
            busy_left = (fleet.statuses(db).get("pending", 0)) if backlog else 0
            wait_drained(db, backlog + result["ok"], 120, procs[1:] if len(procs) > 1 else [])
            records = simulator_requests(simulator.url)
            statuses = fleet.statuses(db)
    finally:
        for proc in procs:
            proc.stop()
        simulator.stop()
    values = latencies(result["acknowledged"] or {}, records)
    return {
        "sent": result["requests"] + result["errors"],
        "acknowledged": result["ok"],
        "ack_p99_ms": result["p99_ms"],
        "answers": result["statuses"],
        "shipped": len(values),
        "p50_ms": _pct(values, 0.5),
        "p99_ms": _pct(values, 0.99),
        "mean_ms": statistics.fmean(values) * 1000 if values else None,
        "backlog_left_when_probes_ended": busy_left,
        "statuses": statuses,
    }


def run(
    kinds: tuple[str, ...] = ("postgresql", "sqlite"),
    probes: int = 40,
    rate: float = 1.0,
    backlog: int = 3000,
    latency_ms: int = 100,
) -> Report:
    report = Report(
        "e2e",
        f"End to end: webhook arrival to ship POST at Back Market ({latency_ms} ms per request)",
        [
            "db",
            "pool",
            "sent",
            "acknowledged",
            "ack_p99_ms",
            "shipped",
            "p50_ms",
            "p99_ms",
            "backlog_left",
        ],
    )
    for kind in kinds:
        if kind == "postgresql" and not postgres_available():
            report.notes.append("PostgreSQL unreachable: skipped")
            continue
        for label, size in (("idle", 0), ("busy", backlog)):
            figures = measure(kind, size, probes, rate, latency_ms)
            report.add(
                db=kind,
                pool=f"{label} ({size:,} other exports queued)" if size else label,
                sent=figures["sent"],
                acknowledged=figures["acknowledged"],
                ack_p99_ms=figures["ack_p99_ms"],
                shipped=figures["shipped"],
                p50_ms=figures["p50_ms"],
                p99_ms=figures["p99_ms"],
                backlog_left=figures["backlog_left_when_probes_ended"],
            )
    report.notes.append(
        "postgresql: gunicorn 2x4 + 1 worker process (16 threads), LISTEN/NOTIFY wake-up; "
        "sqlite: `shopify-bm serve` (in-process wake-up, 16 worker threads)"
    )
    report.notes.append(
        f"webhooks sent open-loop at {rate}/s; the floor is one GET of {latency_ms} ms"
    )
    return report
