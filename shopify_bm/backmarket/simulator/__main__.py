"""Run the simulator as a process: `python -m shopify_bm.backmarket.simulator --port 8099`.

It prints its base URL on one line once it accepts connections, so a parent process can wait
for that line, and stops cleanly on SIGTERM or SIGINT.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Sequence

from shopify_bm.backmarket.simulator.demo import seed_demo
from shopify_bm.backmarket.simulator.faults import Faults, RateLimit
from shopify_bm.backmarket.simulator.server import SimulatorServer
from shopify_bm.backmarket.simulator.state import BackMarketSimulator


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """The command line; every default is Back Market's documented behaviour."""
    parser = argparse.ArgumentParser(
        prog="python -m shopify_bm.backmarket.simulator",
        description="A local fake of the Back Market seller API, with a /_sim/ control API.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8099, help="0 picks a free port")
    parser.add_argument(
        "--token", action="append", default=[], help="a seller's API token (repeatable)"
    )
    parser.add_argument("--seed-demo", action="store_true", help="add the demo seller's orders")
    parser.add_argument("--seed", type=int, default=0, help="seed of the fault generator")
    parser.add_argument("--latency-ms", type=float, default=0.0)
    parser.add_argument("--jitter-ms", type=float, default=0.0)
    parser.add_argument(
        "--rate-limit", type=int, default=200, help="requests per window per token; 0: none"
    )
    parser.add_argument("--rate-window", type=float, default=10.0, help="seconds")
    parser.add_argument("--block-seconds", type=float, default=10.0)
    parser.add_argument("--retry-after", action="store_true", help="send Retry-After on 429")
    parser.add_argument("--html-429", action="store_true", help="429 as Cloudflare HTML")
    parser.add_argument("--log-size", type=int, default=100_000, help="requests kept in the log")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Serve until SIGTERM or SIGINT."""
    args = parse_args(argv)
    simulator = BackMarketSimulator(
        args.token,
        faults=Faults(latency_ms=args.latency_ms, jitter_ms=args.jitter_ms),
        rate_limit=RateLimit(
            limit=args.rate_limit or None,
            window_seconds=args.rate_window,
            block_seconds=args.block_seconds,
            retry_after=args.retry_after,
            html=args.html_429,
        ),
        seed=args.seed,
        log_size=args.log_size,
    )
    if args.seed_demo:
        seed_demo(simulator)
    stopping = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stopping.set())
    with SimulatorServer(simulator, args.host, args.port) as server:
        print(server.url, flush=True)
        stopping.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
