"""Benchmark: a full `canhgac-agent collect` on this machine, as an administrator runs it.

Prints, as medians over BENCH_RUNS fresh processes (default 5):

- `python -c pass` on the same interpreter (the baseline, measured in the same run),
- `canhgac-agent collect --no-state` (every domain; no LAN discovery): wall time, CPU
  time (user + system, children included) and peak RSS, from wait4's rusage,
- each collector alone, in this process (median wall time of BENCH_RUNS calls), so a
  slow domain is visible,
- steady-state cycles, in this process as the daemon runs them: the CPU (this process
  and its children) of a full cycle with the pending-updates cache cleared before
  each (the baseline) beside cycles that reuse it (platforms.cache), medians,
- `lynis audit system --quick` once (when lynis is installed and BENCH_LYNIS is not
  0), for scale: the ratio of its wall time to the agent's.

Also checks that importing the agent's CLI does not import scapy.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

from figures import record

from agent.collectors.base import CollectContext
from agent.collectors.platforms.cache import CACHE
from agent.collectors.registry import COLLECTORS
from agent.document import Watchdog, run_collectors

RUNS = int(os.environ.get("BENCH_RUNS", "5"))
BIN = Path(sys.executable).parent


def measure(argv: list[str], *, check: bool = True) -> tuple[float, float, int]:
    """Wall seconds, CPU seconds and peak RSS (KiB) of one run of `argv`."""
    start = time.perf_counter()
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(process.pid, 0)
    elapsed = time.perf_counter() - start
    if check and os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{argv} failed")
    return elapsed, usage.ru_utime + usage.ru_stime, usage.ru_maxrss


def median_of(argv: list[str]) -> tuple[float, float, float]:
    samples = [measure(argv) for _ in range(RUNS)]
    return (
        statistics.median(s[0] for s in samples),
        statistics.median(s[1] for s in samples),
        statistics.median(s[2] for s in samples),
    )


def per_collector() -> list[tuple[str, float]]:
    ctx = CollectContext()
    timings = []
    for domain, collector in COLLECTORS.items():
        samples = []
        for _ in range(RUNS):
            start = time.perf_counter()
            # A failing domain is still timed: its cost is what is being measured.
            with contextlib.suppress(Exception):
                collector(ctx)
            samples.append(time.perf_counter() - start)
        timings.append((domain.value, statistics.median(samples)))
    return timings


def cycle_cpu(*, reuse: bool) -> float:
    """CPU seconds (this process and its children) of one full cycle of collectors."""
    if not reuse:
        CACHE.clear()
    before = os.times()
    run_collectors(CollectContext(), COLLECTORS, 60, watchdog=Watchdog(cpu_budget=1e9))
    after = os.times()
    return sum(after[i] - before[i] for i in range(4))


def steady_state() -> tuple[float, float]:
    """Median cycle CPU without and with the updates cache (interleaved runs)."""
    cycle_cpu(reuse=False)  # warm the imports and the page cache for both
    full, steady = [], []
    for _ in range(RUNS):
        full.append(cycle_cpu(reuse=False))
        steady.append(cycle_cpu(reuse=True))
    return statistics.median(full), statistics.median(steady)


def scapy_free() -> bool:
    code = "import sys, agent.cli.main, agent.document; sys.exit('scapy' in sys.modules)"
    return subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


def main() -> None:
    agent = [str(BIN / "canhgac-agent"), "collect", "--no-state", "--output", os.devnull]
    base = median_of([sys.executable, "-c", "pass"])
    full = median_of(agent)
    print(f"runs: {RUNS} each, fresh process per run (root: {os.geteuid() == 0})")
    for name, (wall, cpu, rss) in (("python -c pass", base), ("canhgac-agent collect", full)):
        print(
            f"{name:<24} wall {wall * 1e3:7.1f} ms  cpu {cpu * 1e3:7.1f} ms"
            f"  peak RSS {rss / 1024:6.1f} MiB"
        )
    pass_ = "python -c pass"
    record("collect process wall", full[0] * 1e3, "ms", baseline=base[0] * 1e3, baseline_name=pass_)
    record(
        "collect process CPU",
        full[1] * 1e3,
        "ms",
        baseline=base[1] * 1e3,
        baseline_name=pass_,
        goal="< 1500 ms (a first collect)",
    )
    record(
        "collect process peak RSS",
        full[2] / 1024,
        "MiB",
        baseline=base[2] / 1024,
        baseline_name=pass_,
        goal="< 60 MB",
    )
    record("agent import pulls in scapy", 0 if scapy_free() else 1, "yes/no", goal="0")
    full_cycle, steady_cycle = steady_state()
    record(
        "cycle CPU in-process, updates cache reused",
        steady_cycle,
        "s",
        baseline=full_cycle,
        baseline_name="cache cleared",
        goal="< 0.25 CPU-s",
    )
    print("per collector (in-process, sequential, median; updates with its cache warm):")
    for domain, seconds in per_collector():
        record(f"collector {domain}", seconds * 1e3, "ms")
    lynis = shutil.which("lynis")
    if lynis and os.environ.get("BENCH_LYNIS", "1") != "0":
        wall, cpu, rss = measure(
            [lynis, "audit", "system", "--quick", "--no-colors", "--no-log"], check=False
        )
        record(
            "collect process CPU beside lynis",
            full[1],
            "s",
            baseline=cpu,
            baseline_name="lynis audit system --quick, 1 run",
            goal="ratio <= 0.01 (100x less)",
        )
        record(
            "collect process wall beside lynis",
            full[0],
            "s",
            baseline=wall,
            baseline_name="lynis audit system --quick, 1 run",
        )
    else:
        print("lynis: not installed (or BENCH_LYNIS=0); skipped")


if __name__ == "__main__":
    main()
