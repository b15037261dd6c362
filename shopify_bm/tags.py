"""The IMEI tag grammar: `SKU:IMEI<15 digits>`, one Shopify order tag per shipped unit.

Pure: no Flask, HTTP or SQL. Any tag containing `:IMEI` (any letter case) is an attempt and is
validated; a malformed attempt becomes a `Problem` a warehouse worker can act on. Other tags are
not ours and are passed through untouched.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum

from stdnum import imei as stdnum_imei
from stdnum.exceptions import ValidationError as StdnumValidationError

MAX_TAG_LENGTH = 40  # Shopify's limit for one tag
MAX_SKU_LENGTH = 20  # 40 minus ":IMEI" minus the 15 digits
IMEI_LENGTH = 15
TAG_EXAMPLE = "SKU123:IMEI356938035643809"

_MARKER = re.compile(":imei", re.IGNORECASE)
# Blanks after the colon ("IP13: IMEI356…") still make an attempt, reported as whitespace.
_ATTEMPT = re.compile(r":\s*imei", re.IGNORECASE)
# ASCII digits only: str.isdigit() and \d also accept full-width and other Unicode digits.
_ASCII_DIGITS = re.compile(r"[0-9]+")
_WHITESPACE = re.compile(r"\s")
_QUOTE_LIMIT = 60  # a problem message quotes at most this much of a tag


class ProblemCode(StrEnum):
    """Stable identifiers of everything that stops an export; messages may change, codes do not."""

    # A single tag is malformed.
    TAG_TOO_LONG = "tag_too_long"
    TAG_HAS_WHITESPACE = "tag_has_whitespace"
    SKU_MISSING = "sku_missing"
    SKU_TOO_LONG = "sku_too_long"
    IMEI_MISSING = "imei_missing"
    IMEI_NOT_DIGITS = "imei_not_digits"
    IMEI_WRONG_LENGTH = "imei_wrong_length"
    IMEI_BAD_CHECK_DIGIT = "imei_bad_check_digit"
    # The tags do not fit the order's line items.
    MISSING_IMEI = "missing_imei"
    UNKNOWN_SKU = "unknown_sku"
    TOO_MANY_IMEIS = "too_many_imeis"
    DUPLICATE_IMEI = "duplicate_imei"
    LINE_WITHOUT_SKU = "line_without_sku"
    LINE_SKU_TOO_LONG = "line_sku_too_long"
    LINE_SKU_UNTAGGABLE = "line_sku_untaggable"  # a blank or comma in the SKU: no tag can name it


@dataclass(frozen=True)
class Problem:
    """One reason an order cannot export, in words a warehouse worker understands."""

    code: StrEnum  # a ProblemCode, or a later stage's code (exports.ExportProblemCode)
    message: str
    tag: str | None = None
    sku: str | None = None
    imei: str | None = None
    line_item_id: int | None = None
    blocking: bool = True

    def as_dict(self) -> dict[str, object]:
        """The JSON shape used by the CLI and the API: only the fields that are set."""
        out: dict[str, object] = {"code": str(self.code), "message": self.message}
        for key in ("tag", "sku", "imei", "line_item_id"):
            value = getattr(self, key)
            if value is not None:
                out[key] = value
        out["blocking"] = self.blocking
        return out


@dataclass(frozen=True)
class ImeiTag:
    """A well-formed IMEI tag: the unit of `sku` shipped is the phone with this IMEI."""

    tag: str
    sku: str
    imei: str


@dataclass(frozen=True)
class ParsedTags:
    """What an order's tags say about IMEIs."""

    imei_tags: tuple[ImeiTag, ...] = ()
    problems: tuple[Problem, ...] = ()
    other_tags: tuple[str, ...] = field(default=(), repr=False)


def quote(text: str) -> str:
    """Quote a tag or SKU for a message, shortening monsters so the message stays readable.

    Invisible characters (line breaks, tabs, no-break spaces, broken Unicode) are shown escaped,
    like `\\n` or `\\xa0`, so the message stays on one line and says where the blank is.
    """
    if len(text) > _QUOTE_LIMIT:
        return f"“{_visible(text[: _QUOTE_LIMIT - 1])}… ({len(text)} characters)”"
    return f"“{_visible(text)}”"


def _visible(text: str) -> str:
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def split_tags(tags: str | Iterable[str] | None) -> list[str]:
    """Order tags as a list: REST sends one comma-separated string, GraphQL an array."""
    if tags is None:
        return []
    pieces = tags.split(",") if isinstance(tags, str) else [p for t in tags for p in t.split(",")]
    return [p.strip() for p in pieces if p.strip()]


def is_imei_tag(tag: str) -> bool:
    """True when the tag is an attempt at an IMEI tag (contains `:IMEI`, any case)."""
    return _ATTEMPT.search(tag) is not None


def parse_tag(tag: str) -> ImeiTag | list[Problem]:
    """Validate one IMEI tag attempt: the tag when valid, else every defect found in it."""
    problems: list[Problem] = []
    shown = quote(tag)
    if len(tag) > MAX_TAG_LENGTH:
        problems.append(
            Problem(
                ProblemCode.TAG_TOO_LONG,
                f"Tag {shown} is {len(tag)} characters long; a Shopify tag holds at most "
                f"{MAX_TAG_LENGTH}. Use the form {TAG_EXAMPLE}.",
                tag=tag,
            )
        )
    if _WHITESPACE.search(tag):
        problems.append(
            Problem(
                ProblemCode.TAG_HAS_WHITESPACE,
                f"Tag {shown} contains a space or other blank character; write it without "
                f"spaces, like {TAG_EXAMPLE}.",
                tag=tag,
            )
        )
    compact = _WHITESPACE.sub("", tag)
    # The SKU is what stands before the *last* marker, so a SKU may itself contain ":IMEI".
    marker = list(_MARKER.finditer(compact))[-1]
    sku, value = compact[: marker.start()], compact[marker.end() :]

    if not sku:
        problems.append(
            Problem(
                ProblemCode.SKU_MISSING,
                f"Tag {shown} has no SKU before “:IMEI”; write the variant SKU first, "
                f"like {TAG_EXAMPLE}.",
                tag=tag,
            )
        )
    elif len(sku) > MAX_SKU_LENGTH:
        problems.append(
            Problem(
                ProblemCode.SKU_TOO_LONG,
                f"Tag {shown}: the SKU {quote(sku)} is {len(sku)} characters long; at most "
                f"{MAX_SKU_LENGTH} fit in a tag.",
                tag=tag,
                sku=sku,
            )
        )
    problems.extend(_imei_problems(tag, value, shown))
    if problems:
        return problems
    return ImeiTag(tag=tag, sku=sku, imei=value)


def _imei_problems(tag: str, value: str, shown: str) -> list[Problem]:
    if not value:
        return [
            Problem(
                ProblemCode.IMEI_MISSING,
                f"Tag {shown} has no IMEI after “:IMEI”; add the phone's 15 digits, "
                f"like {TAG_EXAMPLE}.",
                tag=tag,
            )
        ]
    if not _ASCII_DIGITS.fullmatch(value):
        return [
            Problem(
                ProblemCode.IMEI_NOT_DIGITS,
                f"Tag {shown}: the IMEI {quote(value)} must contain only the digits 0-9 "
                "(no letters, dashes, or full-width digits).",
                tag=tag,
            )
        ]
    if len(value) != IMEI_LENGTH:
        return [
            Problem(
                ProblemCode.IMEI_WRONG_LENGTH,
                f"Tag {shown}: the IMEI has {len(value)} digit{'s' if len(value) != 1 else ''}; "
                f"an IMEI has exactly {IMEI_LENGTH}.",
                tag=tag,
                imei=value if len(value) <= _QUOTE_LIMIT else None,
            )
        ]
    if not _luhn_valid(value):
        return [
            Problem(
                ProblemCode.IMEI_BAD_CHECK_DIGIT,
                f"Tag {shown}: {value} is not a valid IMEI (its last digit does not match "
                "the others); it was probably mistyped. Scan or copy it again.",
                tag=tag,
                imei=value,
            )
        ]
    return []


def _luhn_valid(digits: str) -> bool:
    # stdnum also accepts 14/16 digits and strips separators; the shape is checked before this.
    try:
        stdnum_imei.validate(digits)
    except StdnumValidationError:
        return False
    return True


def parse_tags(tags: str | Iterable[str] | None) -> ParsedTags:
    """Split an order's tags and validate every IMEI tag among them."""
    imei_tags: list[ImeiTag] = []
    problems: list[Problem] = []
    other: list[str] = []
    for tag in split_tags(tags):
        if not is_imei_tag(tag):
            other.append(tag)
            continue
        result = parse_tag(tag)
        if isinstance(result, ImeiTag):
            imei_tags.append(result)
        else:
            problems.extend(result)
    return ParsedTags(tuple(imei_tags), tuple(problems), tuple(other))


def format_tag(sku: str, imei: str) -> str:
    """The canonical tag for one unit, as the README teaches it."""
    return f"{sku}:IMEI{imei}"
