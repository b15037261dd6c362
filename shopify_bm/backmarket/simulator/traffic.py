"""Cloudflare in front of Back Market: the rate limit per token, forced 429 bursts, and counts.

Not thread-safe on its own: the simulator calls it under its lock.
"""

from __future__ import annotations

from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Literal

from shopify_bm.backmarket.simulator.faults import RateLimit

Rejection = Literal["burst_429", "rate_limited"]


@dataclass
class _TokenTraffic:
    """One token's recent requests."""

    admitted: deque[float] = field(default_factory=deque)  # within the window, for the limit
    arrivals: deque[float] = field(default_factory=deque)  # within the window, for the peak
    blocked_until: float = 0.0
    burst: int = 0  # forced 429s still to answer


class Cloudflare:
    """Counts each token's requests and answers 429 over the limit, then for the whole block."""

    def __init__(self, rate_limit: RateLimit) -> None:
        self.rate_limit = rate_limit
        self._tokens: dict[str, _TokenTraffic] = {}
        self._global_burst = 0
        self.requests: Counter[str] = Counter()
        self.rate_limited: Counter[str] = Counter()  # 429 answers, bursts included
        self.peaks: Counter[str] = Counter()  # most requests seen in one sliding window

    def force_429(self, count: int, token: str | None) -> None:
        """Answer the next `count` requests (of one token, or of anyone) with 429."""
        if token is None:
            self._global_burst = count
        else:
            self._traffic(token).burst = count

    def admit(self, token: str, now: float) -> tuple[Rejection | None, float]:
        """Count a request; returns why it gets a 429 (None: it passes) and the block left."""
        traffic = self._traffic(token)
        limit = self.rate_limit
        self.requests[token] += 1
        _slide(traffic.arrivals, now, limit.window_seconds)
        traffic.arrivals.append(now)
        self.peaks[token] = max(self.peaks[token], len(traffic.arrivals))

        rejection: Rejection | None = None
        retry_after = limit.block_seconds
        if traffic.burst or self._global_burst:
            rejection = "burst_429"
            if traffic.burst:
                traffic.burst -= 1
            else:
                self._global_burst -= 1
        elif now < traffic.blocked_until:
            rejection, retry_after = "rate_limited", traffic.blocked_until - now
        elif limit.limit is not None:
            _slide(traffic.admitted, now, limit.window_seconds)
            traffic.admitted.append(now)
            if len(traffic.admitted) > limit.limit:
                rejection = "rate_limited"
                traffic.blocked_until = now + limit.block_seconds
                traffic.admitted.clear()
        if rejection:
            self.rate_limited[token] += 1
        return rejection, retry_after

    def _traffic(self, token: str) -> _TokenTraffic:
        return self._tokens.setdefault(token, _TokenTraffic())


def _slide(times: deque[float], now: float, window: float) -> None:
    """Drop the times that fell out of the window ending now."""
    while times and times[0] <= now - window:
        times.popleft()
