"""Assign the IMEIs of an order's tags to the units of its line items.

Pure: no Flask, HTTP or SQL. The result says, for every line, which IMEIs it ships with, or every
reason the order is blocked. SKUs compare case-insensitively because Shopify treats tags so.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from shopify_bm.tags import (
    MAX_SKU_LENGTH,
    ImeiTag,
    ParsedTags,
    Problem,
    ProblemCode,
    format_tag,
    parse_tags,
    quote,
)

# A tag holds no blank (the grammar refuses it) and no comma (Shopify splits tags at commas).
_UNTAGGABLE = re.compile(r"[\s,]")


@dataclass(frozen=True)
class LineItem:
    """One line of an order as matching needs it; `units` is what still ships (after edits)."""

    id: int
    sku: str | None
    units: int
    title: str = ""


@dataclass(frozen=True)
class MatchingPolicy:
    """The merchant's settings that change the decision."""

    ship_without_imei: bool = False  # off: a unit without an IMEI blocks the export
    exempt_skus: frozenset[str] = frozenset()  # SKUs (any case) that never need an IMEI

    def is_exempt(self, sku: str | None) -> bool:
        """True when the merchant exempted this SKU (accessories, tablets without a modem…)."""
        return sku is not None and sku.strip().casefold() in self.exempt_casefolded

    @property
    def exempt_casefolded(self) -> frozenset[str]:
        """The exempt SKUs in the form they are compared in."""
        return frozenset(s.strip().casefold() for s in self.exempt_skus)


@dataclass(frozen=True)
class LineImeis:
    """The IMEIs assigned to one line, in tag order."""

    line_item_id: int
    sku: str | None
    quantity: int
    imeis: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, object]:
        """The JSON shape of `shopify-bm check --json`."""
        return {
            "line_item_id": self.line_item_id,
            "sku": self.sku,
            "quantity": self.quantity,
            "imeis": list(self.imeis),
        }


@dataclass(frozen=True)
class MatchResult:
    """The IMEIs of each line, and the problems found; blocked when any problem blocks."""

    lines: tuple[LineImeis, ...]
    problems: tuple[Problem, ...] = field(default=())

    @property
    def exportable(self) -> bool:
        """True when nothing stops the export."""
        return not any(p.blocking for p in self.problems)

    @property
    def blocking_problems(self) -> tuple[Problem, ...]:
        """The problems that stop the export (the others are warnings)."""
        return tuple(p for p in self.problems if p.blocking)

    def imeis_of(self, line_item_id: int) -> tuple[str, ...]:
        """IMEIs assigned to the given line (empty when none)."""
        for line in self.lines:
            if line.line_item_id == line_item_id:
                return line.imeis
        return ()

    def as_dict(self) -> dict[str, object]:
        """The JSON shape of `shopify-bm check --json`."""
        return {
            "exportable": self.exportable,
            "lines": [line.as_dict() for line in self.lines],
            "problems": [p.as_dict() for p in self.problems],
        }


def match_order(
    lines: Sequence[LineItem],
    tags: str | Iterable[str] | ParsedTags | None,
    policy: MatchingPolicy | None = None,
) -> MatchResult:
    """Match the order's IMEI tags to its units; see the module docstring."""
    policy = policy or MatchingPolicy()
    parsed = tags if isinstance(tags, ParsedTags) else parse_tags(tags)
    problems: list[Problem] = list(parsed.problems)

    valid_tags = _drop_duplicate_imeis(parsed.imei_tags, problems)
    tags_by_sku: dict[str, list[ImeiTag]] = defaultdict(list)
    for tag in valid_tags:
        tags_by_sku[tag.sku.casefold()].append(tag)

    # Lines are kept by position, not id, so two lines can never share one list of IMEIs.
    lines_by_sku: dict[str, list[int]] = defaultdict(list)
    for index, line in enumerate(lines):
        sku = (line.sku or "").strip()
        if sku:
            lines_by_sku[sku.casefold()].append(index)

    assigned: list[list[str]] = [[] for _ in lines]
    for key, sku_tags in tags_by_sku.items():
        sku_lines = lines_by_sku.get(key)
        if not sku_lines:
            problems.extend(_unknown_sku(tag) for tag in sku_tags)
            continue
        # Fill the lines of this SKU in order, one tag per unit, in the order tags were typed.
        position = 0
        for index in sku_lines:
            take = sku_tags[position : position + max(lines[index].units, 0)]
            assigned[index].extend(t.imei for t in take)
            position += len(take)
        surplus = sku_tags[position:]
        if surplus:
            problems.append(_too_many([lines[i] for i in sku_lines], sku_tags, surplus))

    for line, imeis in zip(lines, assigned, strict=True):
        problems.extend(_line_problems(line, len(imeis), policy))

    result_lines = tuple(
        LineImeis(line.id, line.sku, line.units, tuple(imeis))
        for line, imeis in zip(lines, assigned, strict=True)
    )
    return MatchResult(result_lines, tuple(problems))


def _drop_duplicate_imeis(tags: Sequence[ImeiTag], problems: list[Problem]) -> list[ImeiTag]:
    """An IMEI identifies one phone: a value tagged twice is a scanning mistake, used nowhere."""
    by_imei: dict[str, list[ImeiTag]] = defaultdict(list)
    for tag in tags:
        by_imei[tag.imei].append(tag)
    kept: list[ImeiTag] = []
    for tag in tags:
        twins = by_imei[tag.imei]
        if len(twins) == 1:
            kept.append(tag)
        elif twins[0] is tag:
            listed = ", ".join(quote(t.tag) for t in twins)
            problems.append(
                Problem(
                    ProblemCode.DUPLICATE_IMEI,
                    f"IMEI {tag.imei} is tagged {len(twins)} times ({listed}); every phone has "
                    "its own IMEI. Remove the extra tag or correct the mistyped one.",
                    tag=tag.tag,
                    sku=tag.sku,
                    imei=tag.imei,
                )
            )
    return kept


def _unknown_sku(tag: ImeiTag) -> Problem:
    return Problem(
        ProblemCode.UNKNOWN_SKU,
        f"Tag {quote(tag.tag)} names SKU {quote(tag.sku)}, which is not on this order. "
        "Check the SKU against the order's line items.",
        tag=tag.tag,
        sku=tag.sku,
        imei=tag.imei,
    )


def _too_many(
    lines: Sequence[LineItem], tags: Sequence[ImeiTag], surplus: Sequence[ImeiTag]
) -> Problem:
    units = sum(max(line.units, 0) for line in lines)
    sku = lines[0].sku or tags[0].sku
    extra = ", ".join(quote(t.tag) for t in surplus)
    return Problem(
        ProblemCode.TOO_MANY_IMEIS,
        f"SKU {quote(sku.strip())} has {len(tags)} IMEI tag{'s' if len(tags) != 1 else ''} "
        f"but only {units} unit{'s' if units != 1 else ''} on this order; remove the extra "
        f"tag{'s' if len(surplus) != 1 else ''} ({extra}).",
        sku=sku,
    )


def _line_problems(line: LineItem, assigned: int, policy: MatchingPolicy) -> list[Problem]:
    if line.units <= 0 or policy.is_exempt(line.sku):
        return []
    name = quote(line.title) if line.title else f"line {line.id}"
    # Problems a merchant can waive by choosing to ship without IMEIs are warnings then.
    waivable = not policy.ship_without_imei
    sku = (line.sku or "").strip()
    if not sku:
        return [
            Problem(
                ProblemCode.LINE_WITHOUT_SKU,
                f"Line {name} has no SKU, so its IMEI cannot be tagged. Give the variant a SKU "
                "in Shopify (at most 20 characters).",
                line_item_id=line.id,
                blocking=waivable,
            )
        ]
    if len(sku) > MAX_SKU_LENGTH:
        return [
            Problem(
                ProblemCode.LINE_SKU_TOO_LONG,
                f"Line {name} has SKU {quote(sku)} of {len(sku)} characters; a tag fits at most "
                f"{MAX_SKU_LENGTH}, so its IMEI cannot be tagged. Shorten the variant's SKU.",
                sku=sku,
                line_item_id=line.id,
                blocking=waivable,
            )
        ]
    if _UNTAGGABLE.search(sku):
        return [
            Problem(
                ProblemCode.LINE_SKU_UNTAGGABLE,
                f"Line {name} has SKU {quote(sku)}, which contains a space or a comma; a tag "
                "cannot, so its IMEI cannot be tagged. Remove them from the variant's SKU.",
                sku=sku,
                line_item_id=line.id,
                blocking=waivable,
            )
        ]
    missing = line.units - assigned
    if missing <= 0:
        return []
    have = f"{assigned} IMEI tag{'s' if assigned != 1 else ''}" if assigned else "no IMEI tag"
    return [
        Problem(
            ProblemCode.MISSING_IMEI,
            f"Line {name} (SKU {quote(sku)}) ships {line.units} unit"
            f"{'s' if line.units != 1 else ''} but has {have}; add one tag "
            f"{format_tag(sku, '<15 digits>')} per unit.",
            sku=sku,
            line_item_id=line.id,
            blocking=waivable,
        )
    ]
