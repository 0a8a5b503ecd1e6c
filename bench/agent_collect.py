"""Benchmark: a full `canhgac-agent collect` on this machine, as an administrator runs it.

Prints, as medians over BENCH_RUNS fresh processes (default 5):

- `python -c pass` on the same interpreter (the baseline, measured in the same run),
- `canhgac-agent --version`: the CPU of starting the agent (its imports),
- `canhgac-agent collect --no-state` (every domain; no LAN discovery): wall time, CPU
  time (user + system, children included) and peak RSS, from wait4's rusage,

The agent's processes run as installed: with their bytecode compiled (the .deb's and
the .rpm's maintainer scripts run compileall), kept in a temporary PYTHONPYCACHEPREFIX
and warmed by one run, even where PYTHONDONTWRITEBYTECODE is set (it would make every
start compile the sources again: ~0.1-0.2 CPU-s more, also printed).
- each collector alone, in this process (median wall time of BENCH_RUNS calls), so a
  slow domain is visible,
- steady-state cycles, in this process as the daemon runs them: the CPU (this process
  and its children) of a full cycle with the package managers' outputs cache cleared
  before each (the baseline), with only `apt list --upgradable` reused (as before
  dpkg-query's listing was cached too) and with everything reused (platforms.cache),
  medians,
- `apt list --upgradable` alone, as the agent runs it (empty cache file names: apt
  builds its package cache in memory on every run, so the agent writes nothing on the
  host) beside apt with a binary cache kept in a temporary directory (what apt costs
  when it may write one, as root by default): most of a first collect's CPU,
- `lynis audit system --quick` once (when lynis is installed and BENCH_LYNIS is not
  0), for scale: the agent's first collect and its steady-state cycle beside it.

Also checks that importing the agent's CLI does not import scapy.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from figures import record

from agent.collectors.base import CollectContext
from agent.collectors.platforms.cache import CACHE
from agent.collectors.platforms.debian import APT_LIST, DPKG_QUERY
from agent.collectors.registry import COLLECTORS
from agent.document import Watchdog, run_collectors

RUNS = int(os.environ.get("BENCH_RUNS", "5"))
BIN = Path(sys.executable).parent


def compiled_env(pycache: str) -> dict[str, str]:
    """The environment of an installed agent's process: bytecode kept (in `pycache`,
    never in the source tree)."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = pycache
    return env


def measure(
    argv: list[str], *, check: bool = True, env: dict[str, str] | None = None
) -> tuple[float, float, int]:
    """Wall seconds, CPU seconds and peak RSS (KiB) of one run of `argv`."""
    start = time.perf_counter()
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    _, status, usage = os.wait4(process.pid, 0)
    elapsed = time.perf_counter() - start
    if check and os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{argv} failed")
    return elapsed, usage.ru_utime + usage.ru_stime, usage.ru_maxrss


def median_of(argv: list[str], env: dict[str, str] | None = None) -> tuple[float, float, float]:
    samples = [measure(argv, env=env) for _ in range(RUNS)]
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


def cycle_cpu(*, reuse: bool, forget: list[str] | None = None) -> float:
    """CPU seconds (this process and its children) of one full cycle of collectors."""
    if not reuse:
        CACHE.clear()
    if forget:
        CACHE.forget(forget)
    before = os.times()
    run_collectors(CollectContext(), COLLECTORS, 60, watchdog=Watchdog(cpu_budget=1e9))
    after = os.times()
    return sum(after[i] - before[i] for i in range(4))


def steady_state() -> tuple[float, float, float]:
    """Median cycle CPU without the outputs cache, with only apt's output reused, and
    with everything reused (interleaved runs)."""
    cycle_cpu(reuse=False)  # warm the imports and the page cache for all
    full, apt_only, steady = [], [], []
    for _ in range(RUNS):
        full.append(cycle_cpu(reuse=False))
        cycle_cpu(reuse=True)  # leaves apt's output cached for the next one
        apt_only.append(cycle_cpu(reuse=True, forget=DPKG_QUERY))
        steady.append(cycle_cpu(reuse=True))
    return statistics.median(full), statistics.median(apt_only), statistics.median(steady)


def apt_list_cpu(cache_dir: Path | None) -> float:
    """CPU seconds of one `apt list --upgradable`: as the agent runs it, or with
    `cache_dir`, apt's binary cache kept there (built by an earlier run)."""
    if cache_dir is None:
        return measure(APT_LIST)[1]
    argv = ["apt", "list", "--upgradable"]
    argv += [
        "-o",
        f"Dir::Cache::pkgcache={cache_dir}/pkgcache.bin",
        "-o",
        f"Dir::Cache::srcpkgcache={cache_dir}/srcpkgcache.bin",
    ]
    return measure(argv)[1]


def scapy_free() -> bool:
    code = "import sys, agent.cli.main, agent.document; sys.exit('scapy' in sys.modules)"
    return subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


def main() -> None:
    agent = [str(BIN / "canhgac-agent"), "collect", "--no-state", "--output", os.devnull]
    version = [str(BIN / "canhgac-agent"), "--version"]
    with tempfile.TemporaryDirectory() as pycache:
        env = compiled_env(pycache)
        measure(version, env=env)  # compiles the bytecode once, as an install does
        base = median_of([sys.executable, "-c", "pass"])
        start = median_of(version, env)
        full = median_of(agent, env)
    uncompiled = median_of(agent, {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"})
    print(f"runs: {RUNS} each, fresh process per run (root: {os.geteuid() == 0})")
    for name, (wall, cpu, rss) in (
        ("python -c pass", base),
        ("canhgac-agent --version", start),
        ("canhgac-agent collect", full),
    ):
        print(
            f"{name:<24} wall {wall * 1e3:7.1f} ms  cpu {cpu * 1e3:7.1f} ms"
            f"  peak RSS {rss / 1024:6.1f} MiB"
        )
    pass_ = "python -c pass"
    record(
        "agent start (--version) CPU, bytecode compiled",
        start[1] * 1e3,
        "ms",
        baseline=base[1] * 1e3,
        baseline_name=pass_,
    )
    record(
        "collect process CPU, sources compiled at each start (no bytecode)",
        uncompiled[1] * 1e3,
        "ms",
        baseline=full[1] * 1e3,
        baseline_name="bytecode compiled, as installed",
    )
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
    full_cycle, apt_cycle, steady_cycle = steady_state()
    record(
        "cycle CPU in-process, apt's output reused (before: dpkg-query run twice)",
        apt_cycle,
        "s",
        baseline=full_cycle,
        baseline_name="cache cleared",
    )
    record(
        "cycle CPU in-process, apt's and dpkg-query's outputs reused",
        steady_cycle,
        "s",
        baseline=apt_cycle,
        baseline_name="apt's output reused only",
        goal="< 0.25 CPU-s",
    )
    if shutil.which("apt"):
        with tempfile.TemporaryDirectory() as cache_dir:
            apt_list_cpu(Path(cache_dir))  # builds the cache
            kept = statistics.median(apt_list_cpu(Path(cache_dir)) for _ in range(RUNS))
        in_memory = statistics.median(apt_list_cpu(None) for _ in range(RUNS))
        record(
            "apt list --upgradable CPU as the agent runs it (package cache in memory)",
            in_memory,
            "s",
            baseline=kept,
            baseline_name="apt with a binary cache kept on disk (the agent writes none)",
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
            "first collect (collect process) CPU beside lynis",
            full[1],
            "s",
            baseline=cpu,
            baseline_name="lynis audit system --quick, 1 run",
        )
        record(
            "steady-state cycle CPU beside lynis",
            steady_cycle,
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
