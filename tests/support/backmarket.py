"""Real-shaped Back Market answers, from tests/fixtures/backmarket (orders, errors, Cloudflare)."""

from __future__ import annotations

import copy
import json
from functools import cache
from pathlib import Path
from typing import Any

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "backmarket"


@cache
def _template(name: str) -> Any:
    return json.loads((FIXTURES / f"{name}.json").read_text())


def fixture(name: str) -> Any:
    """A JSON answer, e.g. `order__single_line` (a fresh copy the test may change)."""
    return copy.deepcopy(_template(name))


def page(name: str) -> tuple[str, dict[str, str]]:
    """A non-JSON page (e.g. `cloudflare__403`) and the headers recorded beside it."""
    headers: dict[str, str] = json.loads((FIXTURES / f"{name}.headers.json").read_text())
    return (FIXTURES / f"{name}.html").read_text(), headers
