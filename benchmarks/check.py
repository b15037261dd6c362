"""`shopify-bm check` on a large order: 100 line items, 250 IMEI tags, as a person runs it.

Times the whole command (process start included) and the decision alone, in-process.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.harness import BIN, ROOT, Report
from benchmarks.loadgen import imei
from shopify_bm.matching import match_order
from shopify_bm.shopify.payloads import parse_order


def big_order(lines: int = 100, tags: int = 250) -> dict[str, Any]:
    """100 lines (half of them 3 units, half 2) tagged with 250 valid IMEIs."""
    items, tag_list = [], []
    for index in range(lines):
        quantity = 3 if index < tags - 2 * lines else 2
        sku = f"SKU-{index:03d}"
        items.append({"id": 1000 + index, "sku": sku, "quantity": quantity, "title": sku})
        for _ in range(quantity):
            tag_list.append(f"{sku}:IMEI{imei(len(tag_list))}")
    return {"id": 1, "name": "#1", "tags": ", ".join(tag_list), "line_items": items}


def run(repeat: int = 15) -> Report:
    report = Report(
        "check",
        "shopify-bm check: an order of 100 line items and 250 IMEI tags",
        ["what", "runs", "median_ms", "max_ms", "exit"],
    )
    order = big_order()
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "order.json"
        path.write_text(json.dumps(order))
        times, codes = [], set()
        for _ in range(repeat):
            started = time.perf_counter()
            done = subprocess.run(
                [str(BIN / "shopify-bm"), "check", str(path), "--json"],
                capture_output=True,
                cwd=ROOT,
                check=False,
            )
            times.append(time.perf_counter() - started)
            codes.add(done.returncode)
    report.add(
        what="whole command (process start included)",
        runs=repeat,
        median_ms=statistics.median(times) * 1000,
        max_ms=max(times) * 1000,
        exit=",".join(map(str, sorted(codes))),
    )
    if codes != {0}:
        raise AssertionError(f"the benchmark order must be exportable; check exited {codes}")
    parsed = parse_order(order)
    inner = []
    for _ in range(200):
        started = time.perf_counter()
        result = match_order(parsed.matching_lines(), parsed.tags)
        inner.append(time.perf_counter() - started)
    report.add(
        what="tag parsing + matching alone",
        runs=200,
        median_ms=statistics.median(inner) * 1000,
        max_ms=max(inner) * 1000,
        exit=0 if result.exportable else 1,
    )
    report.notes.append("a person waits for the whole command; the decision itself is the rest")
    return report
