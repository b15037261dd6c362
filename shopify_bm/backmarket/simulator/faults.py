"""The failures the simulator injects, and the per-request draw that decides them.

Every probability is drawn from the simulator's seeded `random.Random`, and only when it is above
zero, so the same seed, settings and request sequence give the same failures.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Probability = float
WafPage = Literal["waf_html", "waf_challenge"]


class Faults(BaseModel):
    """Failures of one seller's requests, or of everyone's when set globally."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    latency_ms: float = Field(0, ge=0)  # added to every request that reaches the origin
    jitter_ms: float = Field(0, ge=0)  # plus a uniform 0..jitter_ms
    error_rate: Probability = Field(0, ge=0, le=1)  # 500, 502 or 503 before anything is applied
    timeout_rate: Probability = Field(0, ge=0, le=1)  # hang before anything is applied
    ambiguous_rate: Probability = Field(0, ge=0, le=1)  # a write succeeds, the answer is lost
    ambiguous_mode: Literal["error", "hang"] = "error"  # how the answer is lost: a 500 or a hang
    hang_seconds: float = Field(30, ge=0)  # how long a hang lasts (cut short by shutdown)
    after_hang: Literal["drop", "respond"] = "drop"  # close the socket, or answer late
    waf_html_rate: Probability = Field(0, ge=0, le=1)  # Cloudflare's 403 HTML block page
    waf_challenge_rate: Probability = Field(0, ge=0, le=1)  # 403 JSON `bot-need-challenge`


class RateLimit(BaseModel):
    """Cloudflare's limit per token: over `limit` requests in `window_seconds` blocks the token."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    limit: int | None = Field(200, ge=1)  # None: no limit
    window_seconds: float = Field(10, gt=0)
    block_seconds: float = Field(10, ge=0)
    retry_after: bool = False  # send `Retry-After` (Back Market documents none)
    html: bool = False  # Cloudflare's HTML page instead of the JSON error envelope


@dataclass(frozen=True)
class FaultDraw:
    """What the faults decided for one request that got past Cloudflare's limits."""

    delay: float = 0.0  # seconds
    waf: WafPage | None = None
    error_status: int | None = None  # answered before the request is applied
    cloudflare_page: bool = False  # that error comes as Cloudflare HTML, not JSON
    hang: bool = False  # hang before the request is applied
    ambiguous: bool = False  # apply a write, then lose its answer


def draw_faults(faults: Faults, rng: random.Random, *, write: bool) -> FaultDraw:
    """Roll the dice for one request; `write` requests can also be ambiguous."""

    def hit(rate: Probability) -> bool:
        return rate > 0 and rng.random() < rate

    waf: WafPage | None = None
    if hit(faults.waf_html_rate):
        waf = "waf_html"
    elif hit(faults.waf_challenge_rate):
        waf = "waf_challenge"
    error_status, cloudflare_page = None, False
    if hit(faults.error_rate):
        # A 502 comes from Cloudflare itself; a 503 from either Cloudflare or the origin.
        error_status = rng.choice((500, 502, 503))
        cloudflare_page = error_status == 502 or (error_status == 503 and rng.random() < 0.5)
    jitter = rng.uniform(0, faults.jitter_ms) if faults.jitter_ms > 0 else 0.0
    return FaultDraw(
        delay=(faults.latency_ms + jitter) / 1000,
        waf=waf,
        error_status=error_status,
        cloudflare_page=cloudflare_page,
        hang=hit(faults.timeout_rate),
        ambiguous=write and hit(faults.ambiguous_rate),
    )
