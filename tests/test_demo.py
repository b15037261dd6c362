"""`make demo` (`python -m shopify_bm.demo`) as a person runs it: real processes, real output."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from shopify_bm.demo import ORDERS
from support.processes import clean_environ, wait_until

pytestmark = pytest.mark.slow
DEMO = [sys.executable, "-m", "shopify_bm.demo"]


@pytest.fixture
def folders(tmp_path: Path) -> tuple[Path, Path]:
    """An empty working directory, and an empty TMPDIR: both must stay empty."""
    cwd, temp = tmp_path / "cwd", tmp_path / "tmp"
    cwd.mkdir()
    temp.mkdir()
    return cwd, temp


def demo_env(temp: Path) -> dict[str, str]:
    return clean_environ() | {"TMPDIR": str(temp), "PYTHONIOENCODING": "utf-8"}


def table(output: str, title: str) -> list[list[str]]:
    """The rows of the table printed under `title` (cells split on runs of 2+ spaces)."""
    section = output.split(title, 1)[1].split("\n\n", 1)[0]
    lines = [line.strip() for line in section.strip("\n").splitlines()]
    assert set(lines[1]) <= {"-", " "}, section  # header, rule, rows
    return [re.split(r"\s{2,}", line) for line in lines[2:]]


def children_in(folder: Path) -> list[str]:
    """Processes whose working directory is inside `folder` (the demo runs its children there)."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and os.readlink(entry / "cwd").startswith(str(folder)):
                found.append(entry.name)
        except OSError:
            continue
    return found


def test_demo_exports_three_orders_and_shows_what_back_market_received(
    folders: tuple[Path, Path],
) -> None:
    cwd, temp = folders
    done = subprocess.run(
        DEMO, cwd=cwd, env=demo_env(temp), capture_output=True, text=True, timeout=90, check=False
    )

    output = done.stdout
    assert done.returncode == 0, output + done.stderr
    assert done.stderr == ""
    single, pair, forgotten = ORDERS
    assert f"{forgotten.name} is blocked" in output
    assert "has no IMEI tag" in output
    assert "orders/updated webhook sent" in output

    received = table(output, "What Back Market received:")
    by_order: dict[str, list[tuple[str, str, str]]] = {}
    for _n, order, method, path, status, *body in received:
        assert status == "200", received
        by_order.setdefault(order, []).append((method, path, " ".join(body)))
    bm = {o.name: f"/ws/orders/{o.backmarket_order_id}" for o in ORDERS}
    assert by_order[single.name] == [
        ("GET", bm[single.name], "read the order"),
        ("POST", bm[single.name], f"accept SKU {single.phones[0].sku}"),
        (
            "POST",
            bm[single.name],
            f"ship: Colissimo {single.tracking_number}, IMEI {single.phones[0].imei}",
        ),
    ]
    get, ship, *patches = by_order[pair.name]
    assert get == ("GET", bm[pair.name], "read the order")
    assert ship == (
        "POST",
        bm[pair.name],
        f"ship: Colissimo {pair.tracking_number}, IMEIs follow per line",
    )
    assert sorted((m, body) for m, _, body in patches) == sorted(
        ("PATCH", f"IMEI {phone.imei}") for phone in pair.phones
    )
    assert all(path.startswith("/ws/orderlines/") for _, path, _ in patches)
    assert by_order[forgotten.name] == [
        ("GET", bm[forgotten.name], "read the order"),
        (
            "POST",
            bm[forgotten.name],
            f"ship: Colissimo {forgotten.tracking_number}, IMEI {forgotten.phones[0].imei}",
        ),
    ]

    exports = table(output, "How each export ended, and the order at Back Market now:")
    assert [(row[0], row[1], row[4]) for row in exports] == [
        (order.name, "exported", "9 shipped") for order in ORDERS
    ]
    assert output.rstrip().endswith(
        "Every order shipped once at Back Market, with one IMEI per phone."
    )
    assert list(cwd.iterdir()) == []  # nothing written where it runs (the repo, under make)
    assert list(temp.iterdir()) == []  # its temporary folder is gone


@pytest.mark.skipif(not Path("/proc/self/cwd").exists(), reason="needs /proc to find processes")
def test_ctrl_c_stops_the_simulator_and_the_app(folders: tuple[Path, Path]) -> None:
    cwd, temp = folders
    log = cwd.parent / "demo.out"
    with log.open("w") as out:
        demo = subprocess.Popen(
            DEMO,
            cwd=cwd,
            env=demo_env(temp),
            stdout=out,
            stderr=subprocess.STDOUT,
            text=True,
            # Like a terminal's Ctrl-C, even where the test runner ignores SIGINT.
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),  # noqa: PLW1509
        )
    try:
        wait_until(
            lambda: "shopify-bm serve " in log.read_text(),
            30,
            lambda: f"the demo never started the app:\n{log.read_text()}",
        )
        running = children_in(temp)
        assert len(running) >= 2, running  # the simulator and the app
        demo.send_signal(signal.SIGINT)
        sent = time.monotonic()
        status = demo.wait(20)
        assert status == 130, log.read_text()
        assert time.monotonic() - sent < 15
        assert "interrupted" in log.read_text()
        assert children_in(temp) == []
        assert list(temp.iterdir()) == []
    finally:
        if demo.poll() is None:
            demo.kill()
            demo.wait()
