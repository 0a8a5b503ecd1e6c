"""Benchmark: evaluating the built-in packs against a realistic facts document.

Prints the median time per document for 60 listeners and for 600 (a busy host),
and the ratio to a baseline measured in the same run (a plain Python loop over the
same listeners), so the figure means something on a shared, noisy machine.
"""

from __future__ import annotations

import statistics
import time
from typing import Any

from rules.engine import evaluate
from rules.loader import builtin_packs_dir, load_rules


def listeners(count: int) -> list[dict[str, Any]]:
    out = []
    for i in range(count):
        address = ("0.0.0.0", "127.0.0.1", "::", "10.0.0.5")[i % 4]
        out.append(
            {
                "protocol": "tcp" if i % 3 else "udp",
                "family": "ipv6" if ":" in address else "ipv4",
                "address": address,
                "port": 1000 + i,
                "exposure": {"0.0.0.0": "all", "::": "all", "127.0.0.1": "loopback"}.get(
                    address, "specific"
                ),
                "pid": 100 + i,
                "process": f"svc{i}",
                "user": "root",
            }
        )
    return out


def document(count: int) -> dict[str, Any]:
    return {
        "schema": "canhgac.facts/v1",
        "report_id": "0b7e5a3e-1c1d-4f5e-9a6b-1234567890ab",
        "agent_id": "bench",
        "seq": 1,
        "collected_at": "2026-11-27T08:00:00Z",
        "agent_version": "0.1.0",
        "host": {
            "hostname": "bench",
            "os": {"id": "debian", "name": "Debian"},
            "kernel": {"release": "6.1"},
            "architecture": "x86_64",
        },
        "listening": listeners(count),
        "errors": [],
    }


def timed(fn: Any, repeat: int) -> float:
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def main() -> None:
    ruleset = load_rules([builtin_packs_dir()])
    print(f"rules: {len(ruleset.rules)}")
    for count in (60, 600):
        facts = document(count)
        baseline = timed(
            lambda f=facts: [
                s for s in f["listening"] if s["exposure"] != "loopback" and s["port"] in (23, 21)
            ],
            200,
        )
        engine = timed(lambda f=facts: evaluate(ruleset, f), 200)
        print(
            f"listeners={count:4d}  evaluate median {engine * 1e3:.3f} ms/document  "
            f"(baseline loop {baseline * 1e6:.1f} us; ratio {engine / baseline:.0f}x; "
            f"{1 / engine:.0f} documents/s on one core)"
        )


if __name__ == "__main__":
    main()
