"""`make bench`: run every benchmark, or those named (`make bench BENCH=ingest,e2e`)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from benchmarks import check, drain, e2e, ingest, memory
from benchmarks.harness import Report

BENCHMARKS: dict[str, Callable[[], Report]] = {
    "check": check.run,
    "ingest": ingest.run,
    "e2e": e2e.run,
    "drain": drain.run,
    "workers": drain.run_many_workers,
    "memory": memory.run,
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("names", nargs="*", help=f"any of {', '.join(BENCHMARKS)}")
    args = parser.parse_args(argv)
    names = [n for arg in args.names for n in arg.split(",") if n]
    for name in names or list(BENCHMARKS):
        if name not in BENCHMARKS:
            parser.error(f"unknown benchmark {name!r}")
        BENCHMARKS[name]().emit()
    return 0


if __name__ == "__main__":
    sys.exit(main())
