"""The per-agent token bucket, with a fake monotonic clock."""

from __future__ import annotations

import pytest

from server.ingest.ratelimit import RateLimiter


def test_burst_then_the_sustained_rate() -> None:
    now = [0.0]
    limiter = RateLimiter(per_minute=60, burst=3, monotonic=lambda: now[0])
    assert [limiter.check("a") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.check("a") == pytest.approx(1.0)  # one token a second
    assert limiter.check("b") == 0.0  # another agent has its own bucket
    now[0] += 1.0
    assert limiter.check("a") == 0.0
    assert limiter.check("a") > 0
    now[0] += 100.0
    assert [limiter.check("a") for _ in range(3)] == [0.0, 0.0, 0.0]  # capped at burst
    assert limiter.check("a") > 0


def test_idle_buckets_are_pruned() -> None:
    now = [0.0]
    limiter = RateLimiter(per_minute=60, burst=1, monotonic=lambda: now[0])
    for index in range(5000):
        limiter.check(f"agent-{index}")
    now[0] += 10.0
    for _ in range(5000):
        limiter.check("busy")
    assert limiter.tracked < 5000  # the idle agents' buckets are gone
