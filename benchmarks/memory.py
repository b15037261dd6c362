"""Memory: resident memory of the web tier and a worker before and after 10,000 exports.

The whole pipeline at volume: 10,000 signed webhooks over 50 shops into gunicorn, exported by one
worker process to the simulator. Memory is read after start-up, after a warm-up (imports and
caches fill on first use), and at the end; "flat" means under 10% growth after the warm-up.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from benchmarks import fleet
from benchmarks.drain import wait_drained
from benchmarks.harness import (
    SECRET,
    Report,
    app_env,
    database,
    loadgen,
    order_template,
    postgres_available,
    start_simulator,
    start_web,
    start_workers,
)

FIRST_ORDER = 7_200_000_000_000


def run(exports: int = 10_000, shops: int = 50, warmup: int = 500, latency_ms: int = 20) -> Report:
    report = Report(
        "memory",
        f"Memory: RSS of web and worker across {exports:,} exports ({shops} shops)",
        ["process", "start_mb", "after_warmup_mb", "end_mb", "growth_after_warmup"],
    )
    if not postgres_available():
        report.notes.append("PostgreSQL unreachable: skipped")
        return report
    simulator = start_simulator("--latency-ms", str(latency_ms), "--log-size", "1000")
    assert simulator.url is not None
    try:
        with tempfile.TemporaryDirectory() as folder, database("postgresql") as db:
            env = app_env(db, Path(folder) / "instance")
            fleet.migrate(env)
            tokens, _ = fleet.seed_shops(db, simulator.url, shops)
            fleet.seed_backmarket_orders(
                simulator.url, [tokens[n % shops] for n in range(exports)], fleet.FIRST_BM_ORDER
            )
            web = start_web(env, workers=2, threads=4)
            workers = start_workers(env, 1, 32)
            assert web.url is not None
            try:
                time.sleep(2)
                start = (web.rss_mb(), workers[0].rss_mb())
                template = order_template(Path(folder))
                sent = 0
                marks = []
                for batch in (warmup, exports - warmup):
                    result = loadgen(
                        url=web.url + "/webhooks/orders",
                        template=template,
                        secret=SECRET,
                        shop="bench-{i:03d}.myshopify.com",
                        shops=shops,
                        concurrency=8,
                        count=batch,
                        duration=3600,
                        first_order_id=FIRST_ORDER + sent,
                        first_backmarket_id=fleet.FIRST_BM_ORDER + sent,
                        imei_offset=sent,
                        run_id=f"memory-{sent}",
                    )
                    sent += batch
                    elapsed = wait_drained(db, sent, 900, workers)
                    marks.append((web.rss_mb(), workers[0].rss_mb(), result["ok"], elapsed))
            finally:
                web.stop()
                for worker in workers:
                    worker.stop()
            statuses = fleet.statuses(db)
    finally:
        simulator.stop()
    (web_warm, worker_warm, *_), (web_end, worker_end, *_) = marks
    for name, begin, warm, end in (
        ("web (gunicorn master + 2 workers)", start[0], web_warm, web_end),
        ("worker (1 process, 32 threads)", start[1], worker_warm, worker_end),
    ):
        report.add(
            process=name,
            start_mb=begin,
            after_warmup_mb=warm,
            end_mb=end,
            growth_after_warmup=f"{(end - warm) / warm:+.1%}",
        )
    report.notes.append(f"statuses at the end: {statuses}")
    return report
