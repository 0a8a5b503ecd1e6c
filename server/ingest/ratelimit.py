"""Per-agent rate limit: a token bucket per agent token, in this replica's memory.

The limit is per replica: behind a load balancer spreading one agent's reports over
N replicas, an agent can send up to N times the configured rate. That is deliberate
(docs/collector.md): the limit protects each replica's CPU from a misbehaving or
replaying agent, and a shared counter would cost a database write per report.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

_PRUNE_EVERY = 4096  # checks between sweeps of idle buckets


class RateLimiter:
    """`check(key)` -> seconds to wait (0.0 when allowed, and the request is counted)."""

    def __init__(
        self,
        per_minute: float,
        burst: int,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._rate = per_minute / 60.0
        self._burst = float(burst)
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, at)
        self._checks = 0

    def check(self, key: str) -> float:
        now = self._monotonic()
        with self._lock:
            tokens, at = self._buckets.get(key, (self._burst, now))
            tokens = min(self._burst, tokens + (now - at) * self._rate)
            self._checks += 1
            if self._checks % _PRUNE_EVERY == 0:
                self._prune(now)
            if tokens >= 1.0:
                self._buckets[key] = (tokens - 1.0, now)
                return 0.0
            self._buckets[key] = (tokens, now)
            return (1.0 - tokens) / self._rate

    @property
    def tracked(self) -> int:
        """How many keys have a bucket in memory (idle ones, full again, are pruned)."""
        with self._lock:
            return len(self._buckets)

    def _prune(self, now: float) -> None:
        full_after = self._burst / self._rate
        self._buckets = {k: v for k, v in self._buckets.items() if now - v[1] < full_after}
