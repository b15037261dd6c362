"""Real processes for benchmarks: databases, gunicorn, workers, the simulator, the load generator.

Everything runs as the operator would run it (`shopify-bm web`, `shopify-bm worker`, the
simulator's own command); the benchmark process only starts, loads and measures them.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import psycopg
from cryptography.fernet import Fernet
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine, make_url

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
BIN = Path(sys.executable).parent
POSTGRES_URL = os.environ.get(
    "SHOPIFY_BM_BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
SECRET = "bench-webhook-secret"
SHOP = "bench-shop.myshopify.com"
BM_TOKEN = "YmVuY2g6Qk1ULWJlbmNoLXRva2Vu"
KEY = Fernet.generate_key().decode()


# Distinct digit patterns, none inside another, so each placeholder is replaced alone.
SENTINEL_ORDER, SENTINEL_BM, SENTINEL_IMEI = 4_242_424_242_424, "42424242", "135791357913579"


def order_template(folder: Path) -> Path:
    """A real orders/fulfilled body; the load generator fills in order id, BM id and IMEI.

    One phone of SKU PHONE-A with its own valid IMEI per delivery, so every order is exportable.
    """
    fixture = ROOT / "tests/fixtures/shopify/orders_fulfilled__single_line_exportable.json"
    order: dict[str, Any] = json.loads(fixture.read_text())
    order["id"] = SENTINEL_ORDER
    order["admin_graphql_api_id"] = f"gid://shopify/Order/{SENTINEL_ORDER}"
    order["note_attributes"] = [{"name": "backmarket_order_id", "value": SENTINEL_BM}]
    order["tags"] = f"BackMarket, PHONE-A:IMEI{SENTINEL_IMEI}"
    order["line_items"][0]["sku"] = "PHONE-A"
    for fulfillment in order.get("fulfillments", []):
        fulfillment["order_id"] = SENTINEL_ORDER
    text = json.dumps(order).replace(str(SENTINEL_ORDER), "__ORDER_ID__")
    text = text.replace(SENTINEL_BM, "__BM_ID__").replace(SENTINEL_IMEI, "__IMEI__")
    path = folder / "order-template.json"
    path.write_text(text)
    return path


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Database:
    """A fresh database of one kind; PostgreSQL gets a schema of its own."""

    kind: str
    url: str
    engine: Engine
    _cleanup: Any = None

    def count(self, table: str, where: str = "") -> int:
        with self.engine.connect() as connection:
            sql = f"SELECT count(*) FROM {table} {where}"
            return int(connection.execute(text(sql)).scalar_one())

    def close(self) -> None:
        self.engine.dispose()
        if self._cleanup:
            self._cleanup()


@contextlib.contextmanager
def database(kind: str) -> Iterator[Database]:
    """A fresh SQLite file or PostgreSQL schema, removed afterwards."""
    if kind == "sqlite":
        with tempfile.TemporaryDirectory(prefix="shopify-bm-bench-") as folder:
            url = f"sqlite:///{folder}/bench.sqlite3"
            db = Database(kind, url, create_engine(url))
            try:
                yield db
            finally:
                db.close()
        return
    schema = f"bench_{uuid.uuid4().hex[:10]}"
    conninfo = make_url(POSTGRES_URL).set(drivername="postgresql")
    plain = conninfo.render_as_string(hide_password=False)
    with psycopg.connect(plain, autocommit=True) as connection:
        connection.execute(f'CREATE SCHEMA "{schema}"')
    url = (
        make_url(POSTGRES_URL)
        .update_query_dict({"options": f"-csearch_path={schema}"})
        .render_as_string(hide_password=False)
    )

    def drop() -> None:
        with psycopg.connect(plain, autocommit=True) as connection:
            connection.execute(f'DROP SCHEMA "{schema}" CASCADE')

    db = Database(kind, url, create_engine(url), drop)
    try:
        yield db
    finally:
        db.close()


def postgres_available() -> bool:
    try:
        plain = make_url(POSTGRES_URL).set(drivername="postgresql")
        with psycopg.connect(plain.render_as_string(hide_password=False), connect_timeout=3):
            return True
    except psycopg.Error:
        return False


def app_env(db: Database, instance: Path, **extra: str) -> dict[str, str]:
    """The environment of the app's processes: single-store mode on the bench shop."""
    env = {
        **os.environ,
        "DATABASE_URL": db.url,
        "SHOPIFY_BM_INSTANCE_PATH": str(instance),
        "SHOPIFY_BM_ENCRYPTION_KEY": KEY,
        "SHOPIFY_API_KEY": "bench",
        "SHOPIFY_API_SECRET": SECRET,
        "SHOPIFY_SHOP": SHOP,
        "BACKMARKET_API_TOKEN": BM_TOKEN,
        "BACKMARKET_CONTACT_EMAIL": "bench@example.com",
        "BACKMARKET_COMPANY": "Bench",
        "HOST": "127.0.0.1",
    }
    env.update(extra)
    return env


@dataclass
class Process:
    """A child process we started; stopped with SIGTERM, then SIGKILL."""

    name: str
    popen: subprocess.Popen[str]
    url: str | None = None
    log_path: Path | None = None

    def log_tail(self, lines: int = 30) -> str:
        """The end of the process's output, for failure messages."""
        if self.log_path is None or not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    @property
    def pid(self) -> int:
        return self.popen.pid

    def rss_mb(self, include_children: bool = True) -> float:
        """Resident memory in MiB (with gunicorn's workers, which serve the requests)."""
        pids = [self.pid]
        if include_children:
            pids += _children(self.pid)
        return sum(_rss_kb(pid) for pid in pids) / 1024

    def stop(self, timeout: float = 20) -> int | None:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()
        return self.popen.returncode


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                stat = (entry / "stat").read_text()
                if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                    found.append(int(entry.name))
    return found


def _rss_kb(pid: int) -> int:
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


LOGS = Path(tempfile.gettempdir()) / "shopify-bm-bench-logs"


def start(name: str, argv: Sequence[str], env: dict[str, str]) -> Process:
    """Start one of our commands; its output goes to a log file, shown if it dies."""
    LOGS.mkdir(exist_ok=True)
    log = LOGS / f"{name}-{uuid.uuid4().hex[:8]}.log"
    with log.open("w") as handle:
        popen = subprocess.Popen(
            list(argv), env=env, stdout=handle, stderr=subprocess.STDOUT, text=True, cwd=ROOT
        )
    return Process(name, popen, log_path=log)


def wait_http(url: str, process: Process, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.popen.poll() is not None:
            raise RuntimeError(
                f"{process.name} exited with {process.popen.returncode}:\n{process.log_tail()}"
            )
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=1).status_code < 500:
                return
        time.sleep(0.1)
    raise TimeoutError(f"{process.name} did not answer at {url}")


def start_web(env: dict[str, str], workers: int, threads: int) -> Process:
    port = free_port()
    process = start(
        "web",
        [str(BIN / "shopify-bm"), "web", "--workers", str(workers), "--threads", str(threads)],
        {**env, "PORT": str(port)},
    )
    process.url = f"http://127.0.0.1:{port}"
    wait_http(process.url + "/healthz", process)
    return process


def start_workers(env: dict[str, str], count: int, concurrency: int) -> list[Process]:
    worker_env = {**env, "SHOPIFY_BM_WORKER_CONCURRENCY": str(concurrency)}
    return [
        start(f"worker-{n}", [str(BIN / "shopify-bm"), "worker"], worker_env) for n in range(count)
    ]


def start_simulator(*flags: str) -> Process:
    """The Back Market simulator as its own process; it prints its URL when ready."""
    popen = subprocess.Popen(
        [sys.executable, "-m", "shopify_bm.backmarket.simulator", "--port", "0", *flags],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        cwd=ROOT,
    )
    assert popen.stdout is not None
    line = popen.stdout.readline().strip()
    url = next((word for word in line.split() if word.startswith("http")), None)
    if url is None:
        popen.kill()
        raise RuntimeError(f"simulator did not start: {line!r}")
    return Process("simulator", popen, url.rstrip("/"))


def loadgen(**options: Any) -> dict[str, Any]:
    """Run the load generator in its own process; returns its summary."""
    argv = [sys.executable, "-m", "benchmarks.loadgen"]
    for key, value in options.items():
        flag = "--" + key.replace("_", "-")
        if value is True:
            argv.append(flag)
        elif value is not None and value is not False:
            argv += [flag, str(value)]
    done = subprocess.run(argv, capture_output=True, text=True, cwd=ROOT, check=True)
    result: dict[str, Any] = json.loads(done.stdout)
    return result


@dataclass
class Report:
    """One benchmark's table, printed and written to benchmarks/results/<name>.json."""

    name: str
    title: str
    columns: list[str]
    rows: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def add(self, **row: Any) -> None:
        self.rows.append(row)

    def emit(self) -> None:
        cores = os.cpu_count()
        command = "make bench BENCH=" + self.name
        widths = {
            c: max(len(c), *(len(_cell(r.get(c))) for r in self.rows)) if self.rows else len(c)
            for c in self.columns
        }
        print(f"\n== {self.title} ==")
        print(
            f"machine: {cores} cores, {platform.python_implementation()} "
            f"{platform.python_version()}; reproduce: {command}"
        )
        print("  ".join(c.ljust(widths[c]) for c in self.columns))
        for row in self.rows:
            print("  ".join(_cell(row.get(c)).ljust(widths[c]) for c in self.columns))
        for note in self.notes:
            print(f"note: {note}")
        RESULTS.mkdir(parents=True, exist_ok=True)
        (RESULTS / f"{self.name}.json").write_text(
            json.dumps(
                {
                    "benchmark": self.name,
                    "title": self.title,
                    "cores": cores,
                    "python": platform.python_version(),
                    "command": command,
                    "argv": shlex.join(["python", "-m", "benchmarks", *sys.argv[1:]]),
                    "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
                    "rows": self.rows,
                    "notes": self.notes,
                },
                indent=2,
            )
            + "\n"
        )


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.1f}" if abs(value) >= 10 else f"{value:.2f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)
