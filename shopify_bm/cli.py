"""The `shopify-bm` command line."""

from __future__ import annotations

import importlib
import json
import sys
from typing import IO, TYPE_CHECKING, ClassVar

import click

from shopify_bm import __version__
from shopify_bm.matching import MatchingPolicy, MatchResult, match_order
from shopify_bm.shopify.payloads import Order, PayloadError, parse_order

if TYPE_CHECKING:
    from shopify_bm.runtime import Runtime

EXIT_EXPORTABLE, EXIT_BLOCKED, EXIT_BAD_INPUT = 0, 1, 2


class _LazyGroup(click.Group):
    """Loads a subcommand's module only when it runs, so `check` starts in a blink."""

    lazy: ClassVar[dict[str, str]] = {"exports": "shopify_bm.exports_cli:exports"}

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted([*super().list_commands(ctx), *self.lazy])

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.lazy:
            module, name = self.lazy[cmd_name].split(":")
            command: click.Command = getattr(importlib.import_module(module), name)
            return command
        return super().get_command(ctx, cmd_name)


def _runtime() -> Runtime:
    from shopify_bm.runtime import Runtime  # noqa: PLC0415 (keeps `check` fast to start)

    return Runtime.start()


@click.group(cls=_LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="shopify-bm")
def main() -> None:
    """Export fulfilled Shopify orders to Back Market with one IMEI per phone."""


@main.command()
@click.argument("order_file", metavar="ORDER.json")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON object instead of text.")
@click.option(
    "--ship-without-imei",
    is_flag=True,
    help="Decide as a shop that ships units without an IMEI instead of blocking them.",
)
@click.option(
    "--exempt-sku",
    "exempt_skus",
    multiple=True,
    metavar="SKU",
    help="A SKU that never needs an IMEI (repeatable).",
)
def check(
    order_file: str, as_json: bool, ship_without_imei: bool, exempt_skus: tuple[str, ...]
) -> None:
    """Say whether ORDER.json (an orders/fulfilled webhook body, or - for stdin) would export.

    Exit status: 0 exportable, 1 blocked, 2 unreadable input.
    """
    try:
        order = load_order(order_file)
    except PayloadError as error:
        echo_safely(f"shopify-bm check: {error}", err=True)
        sys.exit(EXIT_BAD_INPUT)
    policy = MatchingPolicy(ship_without_imei, frozenset(exempt_skus))
    result = match_order(order.matching_lines(), order.tags, policy)
    if as_json:
        answer = result.as_dict()
        echo_safely(
            json.dumps(answer, indent=2, ensure_ascii=False),
            fallback=json.dumps(answer, indent=2),
        )
    else:
        echo_safely(render_check(order, result))
    sys.exit(EXIT_EXPORTABLE if result.exportable else EXIT_BLOCKED)


def load_order(path: str) -> Order:
    """Read and validate the order in the file at `path`, or on stdin for `-`."""
    if path == "-":
        stdin = getattr(sys.stdin, "buffer", None)  # sys.stdin is None when stdin is closed
        if stdin is None:
            raise PayloadError("cannot read the input: there is no standard input")
        return read_order(stdin)
    try:
        with open(path, "rb") as stream:
            return read_order(stream)
    except OSError as error:
        reason = error.strerror or str(error)
        raise PayloadError(f"cannot read {click.format_filename(path)}: {reason}") from None


def read_order(stream: IO[bytes]) -> Order:
    """Read and validate an order from a file; every failure is a one-line `PayloadError`."""
    try:
        raw = stream.read()
        if not raw.strip():
            raise PayloadError("the input is empty; expected an order as JSON")
        data = json.loads(raw)
    except OSError as error:
        raise PayloadError(f"cannot read the input: {error}") from None
    except UnicodeDecodeError as error:
        raise PayloadError(
            f"cannot read the input as text ({error.encoding}: {error.reason} at byte "
            f"{error.start}); save the order as UTF-8 JSON"
        ) from None
    except json.JSONDecodeError as error:
        raise PayloadError(f"the input is not valid JSON: {error}") from None
    except ValueError as error:
        # e.g. an integer of more than 4300 digits, refused by int() while decoding
        reason = str(error).split(":", 1)[0]
        raise PayloadError(f"the input is not valid JSON: {reason}") from None
    except RecursionError:
        raise PayloadError("the input is not an order: JSON nested too deeply") from None
    return parse_order(data)


def echo_safely(text: str, *, err: bool = False, fallback: str | None = None) -> None:
    """Print `text` even where the terminal's encoding cannot show it or it holds broken Unicode.

    Characters the stream cannot encode (a lone surrogate from a `\\ud800` escape in the input,
    curly quotes on a Latin-1 terminal) are written escaped, or `fallback` (pure ASCII) is used.
    """
    stream = sys.stderr if err else sys.stdout
    encoding = getattr(stream, "encoding", None) or "utf-8"
    try:
        data = text.encode(encoding)
    except UnicodeEncodeError:
        if fallback is not None:
            data = fallback.encode("ascii", "backslashreplace")
        else:
            data = text.encode(encoding, "backslashreplace")
    except LookupError:
        data = text.encode("utf-8", "backslashreplace")
    click.echo(data, err=err)


def render_check(order: Order, result: MatchResult) -> str:
    """The human answer of `check`."""
    title = f"Order {order.name or ''} (id {order.id})".replace("  ", " ")
    verdict = "would export" if result.exportable else "BLOCKED: would not export"
    out = [f"{title}: {verdict}", ""]
    for line in result.lines:
        imeis = ", ".join(line.imeis) if line.imeis else "none"
        out.append(f"  line {line.line_item_id}  SKU {line.sku or '(none)'}  x{line.quantity}")
        out.append(f"    IMEIs: {imeis}")
    blocking = [p for p in result.problems if p.blocking]
    warnings = [p for p in result.problems if not p.blocking]
    if blocking:
        out += ["", "Why it is blocked:"]
        out += [f"  - {p.message} [{p.code}]" for p in blocking]
    if warnings:
        out += ["", "Warnings (shipped anyway under the shop's settings):"]
        out += [f"  - {p.message} [{p.code}]" for p in warnings]
    return "\n".join(out)


@main.command()
def serve() -> None:
    """Run the web app and the export worker in one process (the embedded default)."""
    from shopify_bm import serving  # noqa: PLC0415 (keeps `check` fast to start)

    serving.configure_logging()
    serving.serve(_runtime())


@main.command()
@click.option("--workers", default=2, show_default=True, help="gunicorn worker processes.")
@click.option("--threads", default=4, show_default=True, help="Threads per worker process.")
def web(workers: int, threads: int) -> None:
    """Run only the web tier, under gunicorn (production)."""
    from shopify_bm import serving  # noqa: PLC0415

    serving.configure_logging()
    serving.run_web(_runtime(), workers, threads)


@main.command()
def worker() -> None:
    """Run one export worker process; SIGTERM finishes the current job, then stops."""
    from shopify_bm import serving  # noqa: PLC0415

    serving.configure_logging()
    serving.run_worker(_runtime())


@main.command()
def migrate() -> None:
    """Upgrade the database schema to the newest version."""
    _runtime().db.upgrade()
    click.echo("database schema is up to date")
