"""The `shopify-bm` command line."""

from __future__ import annotations

import json
import sys
from typing import IO

import click

from shopify_bm import __version__
from shopify_bm.matching import MatchingPolicy, MatchResult, match_order
from shopify_bm.shopify.payloads import Order, PayloadError, parse_order

EXIT_EXPORTABLE, EXIT_BLOCKED, EXIT_BAD_INPUT = 0, 1, 2


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="shopify-bm")
def main() -> None:
    """Export fulfilled Shopify orders to Back Market with one IMEI per phone."""


@main.command()
@click.argument("order_file", type=click.File("rb"), metavar="ORDER.json")
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
    order_file: IO[bytes], as_json: bool, ship_without_imei: bool, exempt_skus: tuple[str, ...]
) -> None:
    """Say whether ORDER.json (an orders/fulfilled webhook body, or - for stdin) would export.

    Exit status: 0 exportable, 1 blocked, 2 unreadable input.
    """
    try:
        order = read_order(order_file)
    except PayloadError as error:
        click.echo(f"shopify-bm check: {error}", err=True)
        sys.exit(EXIT_BAD_INPUT)
    policy = MatchingPolicy(ship_without_imei, frozenset(exempt_skus))
    result = match_order(order.matching_lines(), order.tags, policy)
    if as_json:
        click.echo(json.dumps(result.as_dict(), indent=2, ensure_ascii=False))
    else:
        click.echo(render_check(order, result))
    sys.exit(EXIT_EXPORTABLE if result.exportable else EXIT_BLOCKED)


def read_order(stream: IO[bytes]) -> Order:
    """Read and validate an order from a file; every failure is a one-line `PayloadError`."""
    try:
        raw = stream.read()
        data = json.loads(raw)
    except (OSError, UnicodeDecodeError) as error:
        raise PayloadError(f"cannot read the input: {error}") from None
    except json.JSONDecodeError as error:
        raise PayloadError(f"the input is not valid JSON: {error}") from None
    except RecursionError:
        raise PayloadError("the input is not an order: JSON nested too deeply") from None
    return parse_order(data)


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
