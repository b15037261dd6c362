"""Liveness: answers without touching the database (also the benchmarks' bare endpoint)."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz() -> tuple[str, int]:
    """200 while the process serves requests."""
    return "ok", 200
