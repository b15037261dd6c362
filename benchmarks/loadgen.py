"""Load generator: signed Shopify webhook deliveries over keep-alive HTTP/1.1, in its own process.

Lean on purpose (asyncio streams, requests pre-rendered except the per-delivery id and HMAC), so
on a 2-core machine it leaves the server as much CPU as possible. Closed loop (`--concurrency`
connections, each sending as soon as its answer arrives) or open loop (`--rate` requests/s).
Prints one JSON object: counts by status, rate, latency percentiles, the acknowledged ids.

    python -m benchmarks.loadgen --url http://127.0.0.1:8080/webhooks/orders \
        --template order.json --secret S --shop acme.myshopify.com --concurrency 16 --duration 5
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from stdnum import luhn

from shopify_bm.shopify.webhooks import sign_webhook


def imei(n: int) -> str:
    """A valid IMEI, unique per n (the same rule as benchmarks.fleet)."""
    body = f"35{n:012d}"
    return body + luhn.calc_check_digit(body)


@dataclass
class Results:
    """What the run saw."""

    statuses: dict[int, int] = field(default_factory=dict)
    latencies: list[float] = field(default_factory=list)
    sent_at: dict[str, float] = field(default_factory=dict)  # acknowledged id -> wall time sent
    errors: int = 0

    def summary(self, elapsed: float, keep_ids: bool) -> dict[str, Any]:
        ordered = sorted(self.latencies)
        ok = self.statuses.get(200, 0)

        def pct(p: float) -> float | None:
            return ordered[min(len(ordered) - 1, int(p * len(ordered)))] * 1000 if ordered else None

        return {
            "requests": len(self.latencies),
            "ok": ok,
            "errors": self.errors,
            "statuses": {str(k): v for k, v in sorted(self.statuses.items())},
            "elapsed_s": elapsed,
            "rate_per_s": ok / elapsed if elapsed else 0.0,
            "p50_ms": pct(0.50),
            "p90_ms": pct(0.90),
            "p99_ms": pct(0.99),
            "max_ms": ordered[-1] * 1000 if ordered else None,
            "acknowledged": self.sent_at if keep_ids else None,
        }


class Deliveries:
    """Renders delivery N: a fresh order id (and Back Market id) per delivery, signed."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.bare = args.template is None
        parts = urlsplit(args.url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self.path = parts.path or "/"
        self.secret, self.shop, self.topic = args.secret, args.shop, args.topic
        self.shops = max(args.shops, 1)  # with `--shop 'bench-{i:03d}.myshopify.com'`
        self.first_id = args.first_order_id
        self.bm_first = args.first_backmarket_id
        self.template = Path(args.template).read_text() if args.template else ""
        self.run_id = args.run_id
        self.imei_offset = args.imei_offset

    def render(self, n: int) -> tuple[str, bytes]:
        if self.bare:
            head = f"GET {self.path} HTTP/1.1\r\nHost: {self.host}\r\n\r\n"
            return str(n), head.encode()
        order = self.first_id + n
        body = (
            self.template.replace("__ORDER_ID__", str(order))
            .replace("__BM_ID__", str(self.bm_first + n))
            .replace("__IMEI__", imei(self.imei_offset + n))
            .encode()
        )
        shop = self.shop.format(i=n % self.shops)
        webhook_id = f"{self.run_id}-{n}"
        head = (
            f"POST {self.path} HTTP/1.1\r\nHost: {self.host}\r\n"
            "Content-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n"
            f"X-Shopify-Topic: {self.topic}\r\n"
            f"X-Shopify-Hmac-Sha256: {sign_webhook(body, self.secret)}\r\n"
            f"X-Shopify-Shop-Domain: {shop}\r\n"
            "X-Shopify-API-Version: 2025-10\r\n"
            f"X-Shopify-Webhook-Id: {webhook_id}\r\n"
            f"X-Shopify-Event-Id: {webhook_id}\r\n\r\n"
        )
        return str(order), head.encode() + body


async def _exchange(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes
) -> tuple[int, bool]:
    writer.write(request)
    status_line = await reader.readline()
    if not status_line:
        raise ConnectionError("closed")
    status = int(status_line.split()[1])
    length, close = 0, False
    while True:
        line = await reader.readline()
        if line in (b"\r\n", b""):
            break
        name, _, value = line.decode("latin-1").partition(":")
        lowered = name.strip().lower()
        if lowered == "content-length":
            length = int(value.strip())
        elif lowered == "connection" and value.strip().lower() == "close":
            close = True
    if length:
        await reader.readexactly(length)
    return status, close


async def _connection(
    deliveries: Deliveries,
    counter: list[int],
    total: int,
    deadline: float,
    results: Results,
    pacer: asyncio.Queue[None] | None,
) -> None:
    reader = writer = None
    while time.monotonic() < deadline and counter[0] < total:
        if pacer is not None:
            try:
                await asyncio.wait_for(pacer.get(), max(deadline - time.monotonic(), 0.0))
            except TimeoutError:
                break
            if counter[0] >= total:  # another connection took the last one while we waited
                break
        n = counter[0]
        counter[0] += 1
        key, request = deliveries.render(n)
        try:
            reused = writer is not None
            if writer is None:
                reader, writer = await asyncio.open_connection(deliveries.host, deliveries.port)
            assert reader is not None
            sent_wall, started = time.time(), time.perf_counter()
            try:
                status, close = await _exchange(reader, writer, request)
            except (ConnectionError, asyncio.IncompleteReadError):
                if not reused:
                    raise
                # The server closed the idle keep-alive connection first: what every HTTP
                # client does is reconnect and send again.
                writer.close()
                reader, writer = await asyncio.open_connection(deliveries.host, deliveries.port)
                sent_wall, started = time.time(), time.perf_counter()
                status, close = await _exchange(reader, writer, request)
            results.latencies.append(time.perf_counter() - started)
            results.statuses[status] = results.statuses.get(status, 0) + 1
            if status == 200:
                results.sent_at[key] = sent_wall
            if close:
                writer.close()
                reader = writer = None
        except (OSError, ConnectionError, asyncio.IncompleteReadError, ValueError, IndexError):
            results.errors += 1
            if writer is not None:
                writer.close()
            reader = writer = None
    if writer is not None:
        writer.close()


async def _pace(queue: asyncio.Queue[None], rate: float, deadline: float) -> None:
    start = time.perf_counter()
    sent = 0
    while time.monotonic() < deadline:
        due = start + sent / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        queue.put_nowait(None)
        sent += 1


async def run(args: argparse.Namespace) -> dict[str, Any]:
    """Drive the load and summarise it."""
    deliveries = Deliveries(args)
    results = Results()
    counter = [0]
    started = time.perf_counter()
    deadline = time.monotonic() + args.duration
    pacer: asyncio.Queue[None] | None = asyncio.Queue() if args.rate else None
    tasks = [
        asyncio.create_task(_connection(deliveries, counter, args.count, deadline, results, pacer))
        for _ in range(args.concurrency)
    ]
    if pacer is not None:
        tasks.append(asyncio.create_task(_pace(pacer, args.rate, deadline)))
    await asyncio.wait(tasks[: args.concurrency])
    for task in tasks[args.concurrency :]:
        task.cancel()
    return results.summary(time.perf_counter() - started, args.keep_ids)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--template", help="order JSON with __ORDER_ID__/__BM_ID__; none: GET")
    parser.add_argument("--secret", default="")
    parser.add_argument("--shop", default="")
    parser.add_argument("--topic", default="orders/fulfilled")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--count", type=int, default=10**9)
    parser.add_argument("--rate", type=float, default=0.0, help="open loop: requests/s")
    parser.add_argument("--first-order-id", type=int, default=7_000_000_000_000)
    parser.add_argument("--first-backmarket-id", type=int, default=90_000_000)
    parser.add_argument("--run-id", default="bench")
    parser.add_argument("--shops", type=int, default=1, help="deliveries go round N shops")
    parser.add_argument("--imei-offset", type=int, default=0)
    parser.add_argument("--keep-ids", action="store_true")
    args = parser.parse_args(argv)
    json.dump(asyncio.run(run(args)), sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
