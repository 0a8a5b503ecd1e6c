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
- `apt list --upgradable` alone, as the agent runs it where the host keeps no binary
  caches (empty cache file names: apt builds its package cache in memory on every
  run, so the agent writes nothing on the host) beside the agent's reading path where
  it keeps them (platforms.aptlist: apt mapping caches built in a temporary
  directory, valid for this host's lists and status, through its private read-only
  bind mount; the namespace and mounts included): most of a first collect's CPU,
- a first collect (fresh process) with those caches, as on a host that keeps them
  (apt's default): the agent runs in a private mount namespace (unshare -m, as root)
  where /var/cache/apt is the temporary directory holding them, beside the same
  wrapper over an empty directory (no caches, as this container's apt configuration
  has it: the in-memory path); the host's own /var/cache/apt is not touched,
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
from agent.collectors.platforms.aptlist import cached_list_argv
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


def apt_list_cpu(cache_root: Path | None) -> float:
    """CPU seconds of one `apt list --upgradable` as the agent runs it: in memory, or
    with `cache_root` (a root whose var/cache/apt holds valid caches), reading them."""
    if cache_root is None:
        return measure(APT_LIST)[1]
    argv = cached_list_argv(CollectContext(root=cache_root))
    if argv is None:
        raise SystemExit("the reading path was refused for the benchmark's caches")
    return measure(argv)[1]


def build_caches(cache_root: Path) -> Path:
    """apt's two caches in `cache_root`/var/cache/apt, built by apt as root from this
    host's lists and status (the host's /var/cache/apt is not written)."""
    directory = cache_root / "var/cache/apt"
    directory.mkdir(parents=True)
    for path in (cache_root, cache_root / "var", cache_root / "var/cache", directory):
        path.chmod(0o755)
    argv = ["apt", "-o", f"Dir::Cache::pkgcache={directory}/pkgcache.bin"]
    argv += ["-o", f"Dir::Cache::srcpkgcache={directory}/srcpkgcache.bin", "list", "--upgradable"]
    subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    return directory


def in_namespace(cache_dir: Path, argv: list[str]) -> list[str]:
    """`argv` in a private mount namespace whose /var/cache/apt is `cache_dir`. The
    paths reach the shell as arguments ("$0", "$@"), never inside its script."""
    script = 'mount --bind "$0" /var/cache/apt && exec "$@"'
    namespace = ["unshare", "-m", "--propagation", "private", "--"]
    return [*namespace, "sh", "-c", script, str(cache_dir), *argv]


def first_collect_with_caches(agent: list[str], env: dict[str, str]) -> float:
    """Fresh-process collects with the host-style caches, beside the same wrapper with
    none (medians, interleaved); the median CPU seconds with the caches."""
    with (
        tempfile.TemporaryDirectory(prefix="canhgac-bench-") as cache_root,
        tempfile.TemporaryDirectory(prefix="canhgac-bench-empty-") as empty,
    ):
        caches = build_caches(Path(cache_root))
        Path(empty).chmod(0o755)
        measure(in_namespace(caches, agent), env=env)  # warms the page cache
        without, with_caches = [], []
        for _ in range(RUNS):
            without.append(measure(in_namespace(Path(empty), agent), env=env))
            with_caches.append(measure(in_namespace(caches, agent), env=env))
    for index, (label, unit, scale) in enumerate(
        (("wall", "ms", 1e3), ("CPU", "ms", 1e3), ("peak RSS", "MiB", 1 / 1024))
    ):
        record(
            f"first collect {label}, host keeps apt's caches (read-only mount)",
            statistics.median(s[index] for s in with_caches) * scale,
            unit,
            baseline=statistics.median(s[index] for s in without) * scale,
            baseline_name="no caches: built in memory, as before",
            goal="< 1000 ms (issue 13)" if label == "CPU" else "",
        )
    return statistics.median(s[1] for s in with_caches)


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
    cached_first: float | None = None
    if shutil.which("apt") and os.geteuid() == 0:
        with tempfile.TemporaryDirectory(prefix="canhgac-bench-") as cache_root:
            build_caches(Path(cache_root))
            reading, in_memory = [], []
            for _ in range(RUNS):
                reading.append(apt_list_cpu(Path(cache_root)))
                in_memory.append(apt_list_cpu(None))
        record(
            "apt list --upgradable CPU, the agent reading the host's caches (read-only mount)",
            statistics.median(reading),
            "s",
            baseline=statistics.median(in_memory),
            baseline_name="no caches: package cache built in memory (as before)",
        )
        if shutil.which("unshare"):
            with tempfile.TemporaryDirectory() as pycache:
                cached_first = first_collect_with_caches(agent, compiled_env(pycache))
    else:
        print("apt's caches: needs apt and root; skipped")
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
        if cached_first is not None:
            record(
                "first collect CPU beside lynis, host keeps apt's caches",
                cached_first,
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
