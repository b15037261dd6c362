"""`make demo`: the whole loop on this machine, with nothing to configure.

It starts the Back Market simulator (seeded with the demo seller's orders) and `shopify-bm serve`
(web and worker, SQLite in a temporary folder) as two processes, plays the warehouse: three
signed `orders/fulfilled` webhooks, one of them missing its IMEI tag until an `orders/updated`
fixes it, then prints what Back Market received and how each export ended. Both processes are
stopped at the end, on Ctrl-C too, and the temporary folder goes with them.

Exit status: 0 when every export ended as expected, 1 otherwise, 130 when interrupted.
"""

from __future__ import annotations

import io
import json
import os
import queue
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import FrameType
from typing import IO, Any, TypeVar

import httpx
from cryptography.fernet import Fernet

from shopify_bm.backmarket.simulator.demo import DEMO_TOKEN, GALAXY_S21, IPHONE_13
from shopify_bm.db import Database
from shopify_bm.models import ExportStatus
from shopify_bm.operations import ExportView, list_exports
from shopify_bm.shopify.webhooks import delivery_headers

SHOP = "demo-refurb.myshopify.com"
WEBHOOK_SECRET = "demo-webhook-secret"  # noqa: S105  signs the demo's own webhooks only
WAIT_SECONDS = 30.0
STOP_SECONDS = 10.0
SETTLED = frozenset({ExportStatus.EXPORTED, ExportStatus.BLOCKED, ExportStatus.FAILED})
_FOREIGN_PREFIXES = ("SHOPIFY_", "BACKMARKET_")
_FOREIGN_NAMES = frozenset({"DATABASE_URL", "PORT", "HOST"})
T = TypeVar("T")


class DemoError(RuntimeError):
    """Something in the demo did not happen as it should; the message says what."""


# The warehouse's orders ------------------------------------------------------------------------


@dataclass(frozen=True)
class Phone:
    """One fulfilled line: a phone of a SKU, and the IMEI scanned from its box."""

    sku: str
    title: str
    imei: str


@dataclass(frozen=True)
class DemoOrder:
    """A Shopify order of a Back Market order, as the warehouse fulfils it."""

    number: int
    backmarket_order_id: int
    phones: tuple[Phone, ...]
    tracking_number: str
    story: str
    tagged: bool = True  # False: the warehouse forgot the IMEI tags

    @property
    def shopify_id(self) -> int:
        return 5_900_000_000_000 + self.number

    @property
    def name(self) -> str:
        return f"#{self.number}"

    def tags(self) -> list[str]:
        """One `SKU:IMEI<15 digits>` tag per phone."""
        return [f"{phone.sku}:IMEI{phone.imei}" for phone in self.phones]


IPHONE = (IPHONE_13.sku, "iPhone 13 128 Go - Noir - Débloqué")
GALAXY = (GALAXY_S21.sku, "Galaxy S21 5G 128 Go - Gris - Débloqué")
ORDERS = (
    DemoOrder(
        1001,
        81000001,
        (Phone(*IPHONE, "356938035643809"),),
        "6A10010000001",
        "one iPhone, its IMEI tag added at packing",
    ),
    DemoOrder(
        1002,
        81000003,
        (Phone(*IPHONE, "490154203237518"), Phone(*GALAXY, "353918050543210")),
        "6A10020000002",
        "an iPhone and a Galaxy in one parcel, one IMEI tag per phone",
    ),
    DemoOrder(
        1003,
        81000002,
        (Phone(*IPHONE, "352099001761481"),),
        "6A10030000003",
        "one iPhone, packed without its IMEI tag",
        tagged=False,
    ),
)
_EPOCH = datetime(2026, 3, 10, 15, 0, tzinfo=UTC)


def order_payload(order: DemoOrder, *, tagged: bool, minutes_later: int = 0) -> dict[str, Any]:
    """The `orders/fulfilled` (or `orders/updated`) body Shopify sends for the order."""
    updated_at = (_EPOCH + timedelta(minutes=order.number - 1000 + minutes_later)).isoformat()
    lines = [
        {
            "id": order.shopify_id * 10 + n,
            "admin_graphql_api_id": f"gid://shopify/LineItem/{order.shopify_id * 10 + n}",
            "sku": phone.sku,
            "title": phone.title,
            "name": phone.title,
            "quantity": 1,
            "current_quantity": 1,
            "fulfillable_quantity": 0,
            "fulfillment_status": "fulfilled",
            "price": "389.00",
            "requires_shipping": True,
        }
        for n, phone in enumerate(order.phones)
    ]
    tracking_url = f"https://www.laposte.fr/outils/suivre-vos-envois?code={order.tracking_number}"
    return {
        "id": order.shopify_id,
        "admin_graphql_api_id": f"gid://shopify/Order/{order.shopify_id}",
        "name": order.name,
        "order_number": order.number,
        "created_at": _EPOCH.isoformat(),
        "updated_at": updated_at,
        "currency": "EUR",
        "financial_status": "paid",
        "fulfillment_status": "fulfilled",
        "tags": ", ".join(order.tags() if tagged else []),
        "note_attributes": [
            {"name": "backmarket_order_id", "value": str(order.backmarket_order_id)}
        ],
        "line_items": lines,
        "fulfillments": [
            {
                "id": order.shopify_id + 7,
                "admin_graphql_api_id": f"gid://shopify/Fulfillment/{order.shopify_id + 7}",
                "order_id": order.shopify_id,
                "name": f"{order.name}.1",
                "status": "success",
                "created_at": updated_at,
                "updated_at": updated_at,
                "tracking_company": "Colissimo",
                "tracking_number": order.tracking_number,
                "tracking_numbers": [order.tracking_number],
                "tracking_url": tracking_url,
                "tracking_urls": [tracking_url],
                "line_items": [
                    {"id": line["id"], "quantity": 1, "sku": line["sku"]} for line in lines
                ],
            }
        ],
    }


# Processes ------------------------------------------------------------------------------------


@dataclass
class Child:
    """A process the demo started, its output going to a log file."""

    name: str
    popen: subprocess.Popen[str]
    log_path: Path

    def log_tail(self, lines: int = 20) -> str:
        """The end of what it wrote, indented, for error messages."""
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(f"    {line}" for line in text.splitlines()[-lines:])

    def check_alive(self) -> None:
        """Raise `DemoError` with the process's last words if it exited."""
        status = self.popen.poll()
        if status is not None:
            raise DemoError(
                f"{self.name} exited unexpectedly (status {status}):\n{self.log_tail()}"
            )

    def stop(self) -> None:
        """SIGTERM, then SIGKILL if it is still running `STOP_SECONDS` later."""
        if self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(STOP_SECONDS)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()
        if self.popen.stdout is not None:
            self.popen.stdout.close()


@dataclass
class Children:
    """Every process started, stopped in reverse order however the demo ends."""

    folder: Path
    started: list[Child] = field(default_factory=list)

    def start(
        self, name: str, args: Sequence[str], env: dict[str, str], *, stdout_pipe: bool = False
    ) -> Child:
        log_path = self.folder / f"{name.replace(' ', '-')}.log"
        with log_path.open("w") as log:
            popen = subprocess.Popen(  # noqa: S603  our own interpreter and console script
                list(args),
                env=env,
                cwd=self.folder,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE if stdout_pipe else log,
                stderr=log if stdout_pipe else subprocess.STDOUT,
                text=True,
                start_new_session=True,  # Ctrl-C reaches the demo; the demo stops them in order
            )
        child = Child(name, popen, log_path)
        self.started.append(child)
        return child

    def stop_all(self) -> None:
        for child in reversed(self.started):
            child.stop()


def clean_environ() -> dict[str, str]:
    """This environment without any shopify-bm setting of the machine."""
    return {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(_FOREIGN_PREFIXES) and name not in _FOREIGN_NAMES
    }


def shopify_bm_command() -> list[str]:
    """The `shopify-bm` console script of this environment (or the same entry point via -c)."""
    script = Path(sys.executable).with_name("shopify-bm")
    if script.is_file():
        return [str(script)]
    return [sys.executable, "-c", "from shopify_bm.cli import main; main()"]


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def first_line(stream: IO[str], child: Child, timeout: float) -> str:
    """The first line `child` prints, read without ever blocking past `timeout`."""
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: lines.put(stream.readline()), daemon=True).start()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with suppress(queue.Empty):
            line = lines.get(timeout=0.1)
            if line:
                return line.strip()
        child.check_alive()
    raise DemoError(f"{child.name} printed nothing within {timeout:.0f} s:\n{child.log_tail()}")


def wait_for(check: Callable[[], T | None], what: str, timeout: float = WAIT_SECONDS) -> T:
    """Poll `check` until it returns something truthy, or fail saying `what` did not happen."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.1)
    raise DemoError(f"{what} did not happen within {timeout:.0f} s")


# The run -------------------------------------------------------------------------------------


@dataclass
class Demo:
    """The simulator, the app, and what the warehouse does."""

    simulator_url: str
    app_url: str
    database: Database
    serve: Child
    http: httpx.Client

    def post(self, topic: str, payload: dict[str, Any]) -> None:
        """Send one signed webhook, as Shopify does."""
        body = json.dumps(payload).encode()
        headers = delivery_headers(
            topic, body, shop=SHOP, secret=WEBHOOK_SECRET, webhook_id=str(uuid.uuid4())
        )
        response = self.http.post(f"{self.app_url}/webhooks/orders", content=body, headers=headers)
        if response.status_code != 200:
            raise DemoError(f"the app answered {response.status_code} to {topic}: {response.text}")

    def exports(self) -> dict[int, ExportView]:
        """Each order's export, by Shopify order id."""
        with self.database.transaction() as session:
            return {view.shopify_order_id: view for view in list_exports(session)}

    def wait_settled(self, orders: Sequence[DemoOrder], statuses: frozenset[str]) -> None:
        """Wait until every order's export is in one of `statuses`."""

        def settled() -> bool:
            self.serve.check_alive()
            views = self.exports()
            return all(
                o.shopify_id in views and views[o.shopify_id].status in statuses for o in orders
            )

        names = ", ".join(o.name for o in orders)
        wait_for(settled, f"the exports of {names} reaching {'/'.join(sorted(statuses))}")

    def backmarket_order(self, order_id: int) -> dict[str, Any]:
        """The order as Back Market holds it now."""
        answer = self.http.get(f"{self.simulator_url}/_sim/orders/{order_id}")
        answer.raise_for_status()
        order: dict[str, Any] = answer.json()
        return order

    def stats(self) -> dict[str, Any]:
        """The simulator's counters (ships per order, PATCHes per line...)."""
        answer = self.http.get(f"{self.simulator_url}/_sim/stats")
        answer.raise_for_status()
        stats: dict[str, Any] = answer.json()
        return stats

    def received(self) -> list[dict[str, Any]]:
        """The Back Market API requests the simulator answered, oldest first."""
        answer = self.http.get(f"{self.simulator_url}/_sim/requests")
        answer.raise_for_status()
        requests: list[dict[str, Any]] = answer.json()["requests"]
        return [r for r in requests if str(r["path"]).startswith("/ws/")]


def run_demo(demo: Demo, say: Callable[[str], None]) -> bool:
    """Play the warehouse, then report; True when every export ended exported."""
    say("The warehouse fulfils three Back Market orders in Shopify:")
    for order in ORDERS:
        demo.post("orders/fulfilled", order_payload(order, tagged=order.tagged))
        tags = ", ".join(order.tags()) if order.tagged else "no IMEI tag"
        say(f"  {order.name}  {order.story}")
        say(f"         orders/fulfilled webhook sent (tags: {tags})")

    forgot = [o for o in ORDERS if not o.tagged]
    demo.wait_settled(ORDERS, SETTLED)
    views = demo.exports()
    say("")
    for order in forgot:
        view = views[order.shopify_id]
        say(f"{order.name} is {view.status}: {view.reason}")
        fixed = order_payload(order, tagged=True, minutes_later=5)
        demo.post("orders/updated", fixed)
        say(f"  the merchant adds the tag {', '.join(order.tags())}: orders/updated webhook sent")
    demo.wait_settled(ORDERS, SETTLED)

    at_backmarket = {o.name: demo.backmarket_order(o.backmarket_order_id) for o in ORDERS}
    say("")
    say("What Back Market received:")
    say(render_requests(demo.received(), at_backmarket))
    say("")
    say("How each export ended, and the order at Back Market now:")
    views = demo.exports()
    say(render_exports([(views[o.shopify_id], at_backmarket[o.name]) for o in ORDERS]))
    problems = check_outcome(views, at_backmarket, demo.stats())
    say("")
    if problems:
        say("Not as it should be:")
        say("\n".join(f"  - {problem}" for problem in problems))
        return False
    say("Every order shipped once at Back Market, with one IMEI per phone.")
    return True


def check_outcome(
    views: dict[int, ExportView], at_backmarket: dict[str, dict[str, Any]], stats: dict[str, Any]
) -> list[str]:
    """What differs from the expected end: all exported, shipped once, every IMEI on record."""
    problems = []
    for order in ORDERS:
        view = views[order.shopify_id]
        if view.status != ExportStatus.EXPORTED:
            problems.append(f"{order.name} ended {view.status}: {view.reason}")
        bm_order = at_backmarket[order.name]
        held = sorted(str(line["imei"]) for line in bm_order["orderlines"])
        if held != sorted(phone.imei for phone in order.phones):
            problems.append(f"{order.name}: Back Market holds the IMEIs {held}")
    for name in ("orders_shipped_twice", "lines_patched_twice"):
        if stats.get(name):
            problems.append(f"{name.replace('_', ' ')}: {stats[name]}")
    return problems


def summarize_body(method: str, body: Any) -> str:
    """What a Back Market request asked for, in a few words."""
    if not isinstance(body, dict):
        return "read the order" if method == "GET" else ""
    if method == "PATCH":
        return f"IMEI {body.get('imei', '?')}"
    state = body.get("new_state")
    if state == 2:
        return f"accept SKU {body.get('sku')}"
    if state == 3:
        parts = [
            f"ship: {body.get('shipper') or '?'} {body.get('tracking_number') or '?'}",
            f"IMEI {body['imei']}" if body.get("imei") else "IMEIs follow per line",
        ]
        return ", ".join(parts)
    return json.dumps(body, ensure_ascii=False)[:60]


def render_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Left-aligned columns, two spaces apart, under a header and a rule."""
    widths = [max(len(cell) for cell in column) for column in zip(header, *rows, strict=True)]

    def line(cells: Sequence[str]) -> str:
        return "  " + "  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()

    rule = ["-" * w for w in widths]
    return "\n".join([line(header), line(rule), *(line(row) for row in rows)])


def render_requests(requests: Sequence[dict[str, Any]], orders: dict[str, dict[str, Any]]) -> str:
    """The requests as a table: which order, method, path, status, what the body said."""
    owners: dict[str, str] = {}
    for name, order in orders.items():
        owners[f"/ws/orders/{order['order_id']}"] = name
        owners.update((f"/ws/orderlines/{line['id']}", name) for line in order["orderlines"])
    rows = [
        [
            str(n),
            owners.get(str(r["path"]), ""),
            str(r["method"]),
            str(r["path"]),
            str(r["status"] if r["status"] is not None else "dropped"),
            summarize_body(str(r["method"]), r.get("body")),
        ]
        for n, r in enumerate(requests, 1)
    ]
    if not rows:
        return "  nothing"
    return render_table(["#", "ORDER", "METHOD", "PATH", "STATUS", "BODY"], rows)


def render_exports(exports: Sequence[tuple[ExportView, dict[str, Any]]]) -> str:
    """The exports as a table: order, status, why; then the order's state at Back Market."""
    rows = [
        [view.order, view.status, _export_detail(view), *_backmarket_side(order)]
        for view, order in exports
    ]
    header = ["ORDER", "EXPORT", "DETAIL", "BM ORDER", "BM STATE", "IMEIS AT BACK MARKET"]
    return render_table(header, rows)


def _export_detail(view: ExportView) -> str:
    if view.status == ExportStatus.EXPORTED and view.shipment:
        return f"{view.shipment.get('carrier')} {view.shipment.get('tracking_number')}"
    return view.reason or ""


def _backmarket_side(order: dict[str, Any]) -> list[str]:
    state = int(order["state"])
    label = {1: "to accept", 3: "accepted", 9: "shipped"}.get(state, "")
    imeis = ", ".join(str(line["imei"]) or "(none)" for line in order["orderlines"])
    return [str(order["order_id"]), f"{state} {label}".strip(), imeis]


@contextmanager
def _stop_on_sigterm() -> Iterator[None]:
    """SIGTERM ends the demo like Ctrl-C, so its processes are stopped too."""

    def interrupt(_signum: int, _frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def main() -> int:
    """Run the demo; see the module's docstring for the exit status."""
    if isinstance(sys.stdout, io.TextIOWrapper):  # a terminal that cannot show “…” still works
        sys.stdout.reconfigure(errors="backslashreplace")
    with tempfile.TemporaryDirectory(prefix="shopify-bm-demo-") as folder_name:
        folder = Path(folder_name)
        children = Children(folder)
        try:
            with _stop_on_sigterm():
                return _run(folder, children)
        except KeyboardInterrupt:
            print("\ninterrupted: stopping the simulator and the app", file=sys.stderr)
            return 130
        except (DemoError, httpx.HTTPError) as error:
            print(f"\nthe demo failed: {error}", file=sys.stderr)
            for child in children.started:
                print(f"  last lines of {child.name}:\n{child.log_tail()}", file=sys.stderr)
            return 1
        finally:
            # A second Ctrl-C while they stop must not leave them running.
            previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
            try:
                children.stop_all()
            finally:
                signal.signal(signal.SIGINT, previous)


def _run(folder: Path, children: Children) -> int:
    def say(text: str) -> None:
        print(text, flush=True)

    base_env = clean_environ() | {"PYTHONUNBUFFERED": "1"}
    simulator = children.start(
        "Back Market simulator",
        [sys.executable, "-m", "shopify_bm.backmarket.simulator", "--seed-demo", "--port", "0"],
        base_env,
        stdout_pipe=True,
    )
    assert simulator.popen.stdout is not None
    simulator_url = first_line(simulator.popen.stdout, simulator, WAIT_SECONDS)
    if not simulator_url.startswith("http"):
        raise DemoError(f"the simulator printed {simulator_url!r} instead of its URL")

    port = free_port()
    database_url = f"sqlite:///{folder / 'shopify-bm.sqlite3'}"
    env = base_env | {
        "DATABASE_URL": database_url,
        "SHOPIFY_BM_INSTANCE_PATH": str(folder / "instance"),
        "SHOPIFY_BM_ENCRYPTION_KEY": Fernet.generate_key().decode(),
        "SHOPIFY_API_SECRET": WEBHOOK_SECRET,
        "SHOPIFY_SHOP": SHOP,
        "BACKMARKET_API_TOKEN": DEMO_TOKEN,
        "BACKMARKET_API_URL": simulator_url,
        "BACKMARKET_CONTACT_EMAIL": "ops@demo-refurb.example",
        "BACKMARKET_COMPANY": "Demo Refurb",
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "SHOPIFY_BM_WORKER_POLL_SECONDS": "0.2",
    }
    serve = children.start("shopify-bm serve", [*shopify_bm_command(), "serve"], env)
    app_url = f"http://127.0.0.1:{port}"
    with httpx.Client(timeout=10) as http:

        def healthy() -> bool:
            serve.check_alive()
            try:
                return http.get(f"{app_url}/healthz").status_code == 200
            except httpx.TransportError:
                return False

        wait_for(healthy, "shopify-bm serve answering on /healthz")
        say("shopify-bm demo")
        say(f"  Back Market simulator  {simulator_url}  (demo seller, orders 81000001-81000006)")
        say(f"  shopify-bm serve       {app_url}  (web and worker; SQLite in a temporary folder)")
        say("")
        database = Database(database_url)
        try:
            ok = run_demo(Demo(simulator_url, app_url, database, serve, http), say)
        finally:
            database.dispose()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
