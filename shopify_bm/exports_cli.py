"""`shopify-bm exports …`: the operator's view of the export queue, human or --json."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import click
from sqlalchemy.orm import Session

from shopify_bm.models import ExportStatus, utcnow
from shopify_bm.operations import (
    AmbiguousExportError,
    ExportAlreadyDoneError,
    ExportNotFoundError,
    ExportView,
    attempts_of,
    describe_export,
    list_exports,
    retry_export,
)
from shopify_bm.runtime import Runtime

STATUSES = [str(s) for s in ExportStatus]
_json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
_shop_option = click.option("--shop", help="The shop's myshopify domain (when several).")


@click.group("exports")
def exports() -> None:
    """List, inspect, retry and override order exports."""


@contextmanager
def _transaction() -> Iterator[Session]:
    """One transaction on the database the environment names; its connections closed after."""
    runtime = Runtime.start()
    try:
        runtime.db.upgrade()
        with runtime.db.transaction() as session:
            yield session
    finally:
        runtime.db.dispose()


def _emit(as_json: bool, payload: Any, text: str) -> None:
    click.echo(json.dumps(payload, indent=2, ensure_ascii=False) if as_json else text)


def _fail(error: Exception) -> None:
    click.echo(f"shopify-bm exports: {error}", err=True)
    sys.exit(1)


@exports.command("list")
@click.option(
    "--status",
    "statuses",
    multiple=True,
    type=click.Choice(STATUSES),
    help="Only exports in this status (repeatable). Default: all.",
)
@_shop_option
@click.option("--limit", default=200, show_default=True)
@_json_option
def list_command(statuses: tuple[str, ...], shop: str | None, limit: int, as_json: bool) -> None:
    """Exports, most recently changed first."""
    with _transaction() as session:
        views = list_exports(session, statuses, shop, limit)
    lines = [
        f"{v.order:<12} {v.status:<9} {v.backmarket_order_id or '-':<10} {v.shop:<30} "
        f"{(v.reason or '')[:80]}"
        for v in views
    ]
    header = f"{'ORDER':<12} {'STATUS':<9} {'BM ORDER':<10} {'SHOP':<30} REASON"
    _emit(
        as_json,
        [v.as_dict() for v in views],
        "\n".join([header, *lines]) if views else "no exports",
    )


@exports.command("show")
@click.argument("order")
@_shop_option
@_json_option
def show_command(order: str, shop: str | None, as_json: bool) -> None:
    """Everything about one export: status, reasons, what was sent, every attempt."""
    with _transaction() as session:
        try:
            view = describe_export(session, order, shop)
            attempts = attempts_of(session, order, shop)
        except (ExportNotFoundError, AmbiguousExportError) as error:
            _fail(error)
            return
    payload = {**view.as_dict(), "attempts_log": [a.as_dict() for a in attempts]}
    text = render_export(view)
    if attempts:
        text += "\nAttempts (newest first):\n" + "\n".join(
            f"  {a.started_at:%Y-%m-%d %H:%M:%S} {a.outcome:<9} {a.detail or ''}" for a in attempts
        )
    _emit(as_json, payload, text)


def render_export(view: ExportView) -> str:
    """The human description of one export."""
    out = [
        f"Order {view.order} (Shopify {view.shopify_order_id}, "
        f"Back Market {view.backmarket_order_id or 'unknown'}) in {view.shop}",
        f"Status: {view.status}",
    ]
    if view.reason:
        out.append(f"Reason: {view.reason}")
    for problem in view.problems:
        out.append(f"  - {problem.get('message')} [{problem.get('code')}]")
    if view.next_attempt_at:
        out.append(f"Next attempt: {view.next_attempt_at.isoformat(timespec='seconds')}")
    if view.exported_at:
        out.append(f"Exported at: {view.exported_at.isoformat(timespec='seconds')}")
    if view.shipment:
        out.append(f"Sent: {json.dumps(view.shipment, ensure_ascii=False)}")
    if view.override_note:
        out.append("Overrides:\n  " + view.override_note.replace("\n", "\n  "))
    return "\n".join(out)


def _retry(order: str, shop: str | None, as_json: bool, **overrides: bool) -> None:
    with _transaction() as session:
        try:
            view = retry_export(session, order, utcnow(), shop=shop, actor="cli", **overrides)
        except (ExportNotFoundError, AmbiguousExportError, ExportAlreadyDoneError) as error:
            _fail(error)
            return
    _emit(as_json, view.as_dict(), f"queued again:\n{render_export(view)}")


@exports.command("retry")
@click.argument("order")
@_shop_option
@_json_option
def retry_command(order: str, shop: str | None, as_json: bool) -> None:
    """Run a blocked, failed or waiting export again now."""
    _retry(order, shop, as_json)


@exports.command("ship-without-imei")
@click.argument("order")
@_shop_option
@_json_option
def ship_without_imei_command(order: str, shop: str | None, as_json: bool) -> None:
    """Ship this order to Back Market without any IMEI (recorded), and run it now."""
    _retry(order, shop, as_json, ship_without_imei=True)


@exports.command("allow-reused-imei")
@click.argument("order")
@_shop_option
@_json_option
def allow_reused_imei_command(order: str, shop: str | None, as_json: bool) -> None:
    """Accept IMEIs already exported with another order (a returned phone sold again)."""
    _retry(order, shop, as_json, allow_reused_imeis=True)
