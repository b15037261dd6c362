"""Real `shopify-bm` processes for tests: environment, start, bounded waits, always cleaned up.

Every process writes stdout and stderr to one log file, so a failure can show what each process
said, and tests can check what was (not) logged. `Processes` kills whatever is still running when
the test ends, passed or failed.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

import httpx

from conftest import ENCRYPTION_KEY, TEST_BM_TOKEN, TEST_SECRET, TEST_SHOP

SHOPIFY_BM = str(Path(sys.executable).with_name("shopify-bm"))
# The machine's own configuration must not reach the processes under test.
_FOREIGN_PREFIXES = ("SHOPIFY_", "BACKMARKET_")
_FOREIGN_NAMES = frozenset({"DATABASE_URL", "PORT", "HOST"})
T = TypeVar("T")


def clean_environ() -> dict[str, str]:
    """This process's environment without any shopify-bm setting."""
    return {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(_FOREIGN_PREFIXES) and name not in _FOREIGN_NAMES
    }


def app_env(
    database_url: str, tmp_path: Path, backmarket_url: str, **overrides: object
) -> dict[str, str]:
    """Single-store settings as environment variables (the values of conftest's make_settings)."""
    env = clean_environ()
    env.update(
        {
            "DATABASE_URL": database_url,
            "SHOPIFY_BM_INSTANCE_PATH": str(tmp_path / "instance"),
            "SHOPIFY_BM_ENCRYPTION_KEY": ENCRYPTION_KEY,
            "SHOPIFY_API_KEY": "test-client-id",
            "SHOPIFY_API_SECRET": TEST_SECRET,
            "SHOPIFY_SHOP": TEST_SHOP,
            "BACKMARKET_API_TOKEN": TEST_BM_TOKEN,
            "BACKMARKET_API_URL": backmarket_url,
            "BACKMARKET_CONTACT_EMAIL": "ops@acme-refurb.example",
            "BACKMARKET_COMPANY": "Acme Refurb",
            "SHOPIFY_BM_WORKER_POLL_SECONDS": "0.05",
            "SHOPIFY_BM_BACKMARKET_TIMEOUT_SECONDS": "5",
            "HOST": "127.0.0.1",
            "PYTHONUNBUFFERED": "1",
        }
    )
    env.update({name: str(value) for name, value in overrides.items()})
    return env


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass
class Process:
    """One child process and its log."""

    name: str
    popen: subprocess.Popen[bytes]
    log_path: Path

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def output(self) -> str:
        """Everything it wrote on stdout and stderr so far."""
        return self.log_path.read_text(errors="replace")

    def signal(self, signum: signal.Signals) -> None:
        if self.alive():
            self.popen.send_signal(signum)

    def wait(self, timeout: float) -> int | None:
        """Its exit status, or None when it is still running after `timeout` seconds."""
        try:
            return self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            return None


@dataclass
class Processes:
    """Starts processes and, on exit, kills (SIGKILL) and reaps every one still running."""

    log_dir: Path
    processes: list[Process] = field(default_factory=list)

    def start(
        self, name: str, args: list[str], env: Mapping[str, str], cwd: Path | None = None
    ) -> Process:
        """Start `args` with `env`, its output going to `<log_dir>/<name>.log`."""
        log_path = self.log_dir / f"{name}.log"
        with log_path.open("wb") as log:
            popen = subprocess.Popen(
                args,
                env=dict(env),
                cwd=cwd or self.log_dir,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        process = Process(name, popen, log_path)
        self.processes.append(process)
        return process

    def shopify_bm(
        self, name: str, command: list[str], env: Mapping[str, str], cwd: Path | None = None
    ) -> Process:
        """Start the `shopify-bm` console script installed beside this Python."""
        return self.start(name, [SHOPIFY_BM, *command], env, cwd)

    def report(self) -> str:
        """The tail of every process's log, for failure messages."""
        parts = []
        for process in self.processes:
            state = "running" if process.alive() else f"exit status {process.popen.returncode}"
            tail = "\n".join(process.output().splitlines()[-25:])
            parts.append(f"--- {process.name} (pid {process.pid}, {state}) ---\n{tail}")
        return "\n".join(parts)

    def __enter__(self) -> Processes:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        for process in self.processes:
            if process.alive():
                process.popen.kill()
        for process in self.processes:
            process.popen.wait(10)


def wait_until(
    check: Callable[[], T | None],
    timeout: float,
    failure: str | Callable[[], str],
    interval: float = 0.05,
) -> T:
    """Poll `check` until it returns a truthy value (returned); else fail with `failure`."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            message = failure() if callable(failure) else failure
            raise AssertionError(f"after {timeout:.0f} s: {message}")
        time.sleep(interval)


def wait_for_http(url: str, process: Process, procs: Processes, timeout: float = 20) -> None:
    """Wait until `url` answers 200, failing at once if `process` exits."""

    def up() -> bool:
        if not process.alive():
            raise AssertionError(f"{process.name} exited before serving:\n{procs.report()}")
        try:
            return httpx.get(url, timeout=1).status_code == 200
        except httpx.TransportError:
            return False

    wait_until(up, timeout, lambda: f"{url} never answered 200\n{procs.report()}", 0.1)


def run_cli(
    args: list[str], env: Mapping[str, str], cwd: Path, timeout: float = 30
) -> subprocess.CompletedProcess[str]:
    """Run `shopify-bm ARGS` to completion; returns the completed process (text output)."""
    return subprocess.run(
        [SHOPIFY_BM, *args],
        env=dict(env),
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def exports_json(env: Mapping[str, str], cwd: Path) -> list[dict[str, Any]]:
    """`shopify-bm exports list --json`, parsed."""
    done = run_cli(["exports", "list", "--json"], env, cwd)
    assert done.returncode == 0, done.stderr
    exports: list[dict[str, Any]] = json.loads(done.stdout)
    return exports
