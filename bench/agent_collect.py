"""Benchmark: one `canhgac-agent collect` on this machine, as an administrator runs it.

Runs the real console script N times, each in a fresh process, and prints the median
wall time and peak RSS (from wait4's rusage), next to a baseline measured in the same
run: `python -c pass` on the same interpreter, so interpreter start-up is visible.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RUNS = int(os.environ.get("BENCH_RUNS", "7"))
BIN = Path(sys.executable).parent


def measure(argv: list[str]) -> tuple[float, int]:
    start = time.perf_counter()
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(process.pid, 0)
    elapsed = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{argv} failed")
    return elapsed, usage.ru_maxrss  # KiB on Linux


def median_of(argv: list[str]) -> tuple[float, float]:
    samples = [measure(argv) for _ in range(RUNS)]
    return statistics.median(s[0] for s in samples), statistics.median(s[1] for s in samples)


def main() -> None:
    with tempfile.TemporaryDirectory() as state:
        collect = [
            str(BIN / "canhgac-agent"),
            "collect",
            "--output",
            os.devnull,
            "--state-dir",
            state,
        ]
        base_time, base_rss = median_of([sys.executable, "-c", "pass"])
        time_s, rss = median_of(collect)
        check_time, check_rss = median_of(
            [str(BIN / "canhgac-agent"), "check", "--fail-on", "critical"]
        )
    print(f"runs: {RUNS} each, fresh process per run (root: {os.geteuid() == 0})")
    print(
        f"baseline python -c pass   {base_time * 1e3:7.1f} ms  peak RSS {base_rss / 1024:6.1f} MiB"
    )
    for name, (t, r) in (("collect", (time_s, rss)), ("check", (check_time, check_rss))):
        print(
            f"canhgac-agent {name:<12} {t * 1e3:7.1f} ms  peak RSS {r / 1024:6.1f} MiB"
            f"  ({t / base_time:.1f}x baseline time)"
        )


if __name__ == "__main__":
    main()
