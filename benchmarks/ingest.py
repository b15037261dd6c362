"""Ingest: signed deliveries per second that gunicorn verifies, stores, queues and acknowledges.

For each database, at rising concurrency, the same server is loaded on a bare endpoint
(`/healthz`, no database) and on `/webhooks/orders` with a real-shaped `orders/fulfilled` body
(a new order each time). Then an open-loop run at half the peak gives the acknowledgement latency
a real burst would see, and the database is counted: every acknowledged delivery must be there.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from benchmarks.harness import (
    SECRET,
    SHOP,
    Report,
    app_env,
    database,
    loadgen,
    order_template,
    postgres_available,
    start_web,
)


def run(
    kinds: tuple[str, ...] = ("sqlite", "postgresql"),
    concurrencies: tuple[int, ...] = (1, 4, 16, 64),
    duration: float = 5.0,
    workers: int = 4,
    threads: int = 2,
) -> Report:
    report = Report(
        "ingest",
        "Ingest: verified, stored, acknowledged webhook deliveries per second (gunicorn)",
        [
            "db",
            "concurrency",
            "bare_rps",
            "ingest_rps",
            "ratio",
            "p50_ms",
            "p99_ms",
            "errors",
        ],
    )
    for kind in kinds:
        if kind == "postgresql" and not postgres_available():
            report.notes.append("PostgreSQL unreachable: its rows are missing")
            continue
        with tempfile.TemporaryDirectory() as folder, database(kind) as db:
            template = order_template(Path(folder))
            web = start_web(app_env(db, Path(folder) / "instance"), workers, threads)
            assert web.url is not None
            acknowledged, peak = 0, 0.0
            try:
                for concurrency in concurrencies:
                    bare = loadgen(
                        url=web.url + "/healthz", concurrency=concurrency, duration=duration
                    )
                    ingest = loadgen(
                        url=web.url + "/webhooks/orders",
                        template=template,
                        secret=SECRET,
                        shop=SHOP,
                        concurrency=concurrency,
                        duration=duration,
                        run_id=f"c{concurrency}",
                        first_order_id=7_000_000_000_000 + concurrency * 10_000_000,
                    )
                    acknowledged += ingest["ok"]
                    peak = max(peak, ingest["rate_per_s"])
                    report.add(
                        db=kind,
                        concurrency=concurrency,
                        bare_rps=bare["rate_per_s"],
                        ingest_rps=ingest["rate_per_s"],
                        ratio=ingest["rate_per_s"] / bare["rate_per_s"],
                        p50_ms=ingest["p50_ms"],
                        p99_ms=ingest["p99_ms"],
                        errors=ingest["errors"] + ingest["requests"] - ingest["ok"],
                    )
                half = loadgen(
                    url=web.url + "/webhooks/orders",
                    template=template,
                    secret=SECRET,
                    shop=SHOP,
                    concurrency=64,
                    rate=round(peak / 2),
                    duration=duration,
                    run_id="half",
                    first_order_id=8_000_000_000_000,
                )
                acknowledged += half["ok"]
                report.add(
                    db=kind,
                    concurrency=f"open {round(peak / 2)}/s",
                    ingest_rps=half["rate_per_s"],
                    p50_ms=half["p50_ms"],
                    p99_ms=half["p99_ms"],
                    errors=half["errors"] + half["requests"] - half["ok"],
                )
            finally:
                web.stop()
            stored = db.count("webhook_deliveries")
            jobs = db.count("export_jobs")
            report.notes.append(
                f"{kind}: {acknowledged:,} acknowledged, {stored:,} stored, {jobs:,} exports "
                f"queued: {'none lost' if stored == acknowledged == jobs else 'MISMATCH'}"
            )
    report.notes.append(
        f"gunicorn {workers} workers x {threads} threads; load generator in its own process "
        "on the same cores"
    )
    return report
