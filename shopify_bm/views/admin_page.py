"""What the merchant's page shows, prepared for the templates: rows, words, actions. Pure.

The templates only place these values; every label, hint, time format and action URL is
decided here, from the `operations` views the CLI prints too.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from shopify_bm.models import ExportStatus
from shopify_bm.operations import ExportView
from shopify_bm.settings import BACKMARKET_URLS

# What the merchant can do about each reason (the README's table, in the merchant's words).
HINTS: dict[str, str] = {
    "missing_imei": "Add one order tag per phone: SKU:IMEI followed by its 15 digits.",
    "unknown_sku": "Fix the SKU in the tag so it matches the line's SKU.",
    "too_many_imeis": "Remove the extra IMEI tag.",
    "duplicate_imei": "Every phone has its own IMEI: rescan and fix the tag.",
    "imei_bad_check_digit": "The IMEI is mistyped: rescan it.",
    "imei_wrong_length": "An IMEI has exactly 15 digits: rescan it.",
    "imei_not_digits": "Type the IMEI with plain digits 0-9.",
    "imei_missing": "Add the 15 digits after IMEI.",
    "tag_has_whitespace": "Remove the spaces from the tag.",
    "sku_missing": "Put the SKU before :IMEI.",
    "sku_too_long": "SKUs used in IMEI tags must be at most 20 characters.",
    "tag_too_long": "SKUs used in IMEI tags must be at most 20 characters.",
    "line_without_sku": "Give the variant a short SKU in Shopify.",
    "line_sku_too_long": "Give the variant a SKU of at most 20 characters in Shopify.",
    "line_sku_untaggable": "Give the variant a SKU without spaces or commas in Shopify.",
    "no_tracking": "Add a tracking number to the fulfillment in Shopify.",
    "imei_already_exported": (
        "Rescan the phone; if it came back and is sold again, allow the reused IMEI."
    ),
    "backmarket_line_quantity": (
        "Back Market cannot take IMEIs for a line of several phones: ship without IMEI."
    ),
    "backmarket_imei_conflict": (
        "Back Market already holds another IMEI (IMEIs are write-once): contact Back Market."
    ),
    "backmarket_token_rejected": "Set a valid Back Market API token in Settings, then retry.",
    "backmarket_token_missing": "Set the Back Market API token in Settings, then retry.",
    "backmarket_settings_invalid": "Check the contact email and company in Settings, then retry.",
    "backmarket_refused": "Back Market refused the shipment: fix what it says, then retry.",
    "backmarket_unreachable": "Back Market was unreachable for two days: retry when it is back.",
}
_STATUS: dict[str, tuple[str, str]] = {  # status -> (label, Polaris badge tone)
    ExportStatus.BLOCKED: ("Blocked", "warning"),
    ExportStatus.FAILED: ("Failed", "critical"),
    ExportStatus.RETRY: ("Retrying", "caution"),
    ExportStatus.PENDING: ("Queued", "info"),
    ExportStatus.RUNNING: ("Sending", "info"),
    ExportStatus.EXPORTED: ("Exported", "success"),
    ExportStatus.IGNORED: ("Not a Back Market order", "neutral"),
}
_PLATFORMS = {"eu": "Europe (backmarket.fr)", "us": "United States (.com)", "ap": "Japan (.co.jp)"}
ATTENTION = (ExportStatus.BLOCKED, ExportStatus.FAILED)
WAITING = (ExportStatus.PENDING, ExportStatus.RETRY, ExportStatus.RUNNING)

# (order id, action) -> URL of the POST that performs it.
ActionUrl = Callable[[int, str], str]


@dataclass(frozen=True)
class Action:
    """A button that POSTs to `url`."""

    label: str
    url: str
    variant: str = "secondary"


@dataclass(frozen=True)
class ProblemLine:
    """One reason, and what to do about it."""

    message: str
    hint: str | None


@dataclass(frozen=True)
class ExportRow:
    """One export as a table row."""

    order: str
    status: str
    status_label: str
    tone: str
    reason: str | None
    problems: tuple[ProblemLine, ...]
    next_attempt: str
    updated: str
    exported: str
    tracking: str | None
    overrides: str | None
    actions: tuple[Action, ...]


@dataclass(frozen=True)
class Choice:
    """An option of a select."""

    value: str
    label: str
    selected: bool


@dataclass(frozen=True)
class SettingsForm:
    """The shop's Back Market settings as the form shows them (the token only as set or not)."""

    url: str
    token_state: str  # "set" or "not set": the token itself is never shown
    contact_email: str
    company: str
    ship_without_imei: bool
    exempt_skus: str
    platforms: tuple[Choice, ...]
    from_environment: bool  # single-store mode: the environment is applied again at start


@dataclass(frozen=True)
class AdminPage:
    """Everything the page shows."""

    shop: str
    embedded: bool
    api_key: str
    attention: tuple[ExportRow, ...]
    waiting: tuple[ExportRow, ...]
    exported: tuple[ExportRow, ...]
    settings: SettingsForm


def export_row(view: ExportView, action_url: ActionUrl) -> ExportRow:
    """The row of one export, with the actions its status allows."""
    label, tone = _STATUS.get(view.status, (view.status.title(), "neutral"))
    codes = {str(p.get("code")) for p in view.problems} | {view.reason_code or ""}
    return ExportRow(
        order=view.order,
        status=view.status,
        status_label=label,
        tone=tone,
        reason=view.reason,
        problems=_problems(view),
        next_attempt=_next_attempt(view),
        updated=format_time(view.updated_at),
        exported=format_time(view.exported_at),
        tracking=_tracking(view.shipment),
        overrides=view.override_note,
        actions=_actions(view, codes, action_url),
    )


def format_time(value: datetime | None) -> str:
    """`2026-03-10 15:00 UTC`, or an em dash."""
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC") if value else "—"


def platform_choices(current_url: str) -> tuple[Choice, ...]:
    """Back Market's platforms; a custom URL (set in the environment) stays selectable."""
    choices = [
        Choice(url, _PLATFORMS[region], url == current_url)
        for region, url in BACKMARKET_URLS.items()
    ]
    if current_url not in BACKMARKET_URLS.values():
        choices.append(Choice(current_url, f"Custom ({current_url})", True))
    return tuple(choices)


def rows(views: Sequence[ExportView], action_url: ActionUrl) -> tuple[ExportRow, ...]:
    """Rows in the order given."""
    return tuple(export_row(view, action_url) for view in views)


def _problems(view: ExportView) -> tuple[ProblemLine, ...]:
    lines = [
        ProblemLine(str(p.get("message") or p.get("code") or "?"), HINTS.get(str(p.get("code"))))
        for p in view.problems
    ]
    if not lines and view.reason_code in HINTS:
        lines.append(ProblemLine(view.reason or view.reason_code or "", HINTS[view.reason_code]))
    return tuple(lines)


def _next_attempt(view: ExportView) -> str:
    if view.next_attempt_at is not None:
        return format_time(view.next_attempt_at)
    if view.status == ExportStatus.BLOCKED:
        return "When the order changes, or on Retry"
    if view.status == ExportStatus.FAILED:
        return "Only on Retry"
    if view.status == ExportStatus.RUNNING:
        return "Now"
    return "—"


def _tracking(shipment: dict[str, Any] | None) -> str | None:
    if not shipment or not shipment.get("tracking_number"):
        return None
    carrier = shipment.get("carrier")
    number = str(shipment["tracking_number"])
    return f"{carrier} {number}" if carrier else number


def _actions(view: ExportView, codes: set[str], action_url: ActionUrl) -> tuple[Action, ...]:
    if view.status in ATTENTION:
        actions = [Action("Retry", action_url(view.shopify_order_id, "retry"), "primary")]
        if not view.ship_without_imei:
            actions.append(
                Action("Ship without IMEI", action_url(view.shopify_order_id, "ship-without-imei"))
            )
        if "imei_already_exported" in codes and not view.allow_reused_imeis:
            actions.append(
                Action("Allow reused IMEI", action_url(view.shopify_order_id, "allow-reused-imei"))
            )
        return tuple(actions)
    if view.status == ExportStatus.RETRY:
        return (Action("Retry now", action_url(view.shopify_order_id, "retry")),)
    return ()
