"""Benchmark: the agent daemon over many cycles against a real collector.

Prints, beside a baseline measured in the same run:

- baseline: `canhgac-agent run --once` as fresh processes (BENCH_RUNS, default 5),
  nothing carried over from the previous run (carried.json removed, as before issue
  9): median CPU seconds (user + system, children included) and peak RSS per run;
  beside it, each followed by a run that takes over the updates cache it left;
- the daemon, `canhgac-agent run --interval 1s`, over BENCH_CYCLES delivered cycles
  (default 20; the issue's figure is 1,000): CPU seconds per cycle (median of the
  per-cycle deltas, cycle children included; steady state, the pending-updates
  listing reused) beside its first cycle (start-up and a full collection) and the
  ratio to the one-shot baseline, the daemon's RSS after the first cycle and at the
  end, and the growth between them, and the peak of the daemon's RSS plus its cycle
  child's own memory (USS; the collectors' commands not counted); each cycle in a
  thread (`--cycle thread`, as before) and in a forked child (`--cycle process`, the
  default), each with glibc's default malloc arenas and with MALLOC_ARENA_MAX=2
  (BENCH_MODES picks some by number, e.g. "0,2"); a progress line every
  BENCH_PROGRESS cycles (default 25, 0 for none);
- the drain of a full 72-hour spool (288 reports, one per 15 minutes) into the
  collector: wall time with no rate cap, beside one report sent alone (median of
  BENCH_RUNS) times 288.

The collector is `canhgac-server serve` on SQLite in a temporary directory, on
loopback. Run: `.venv/bin/python bench/agent_daemon.py`.
"""

from __future__ import annotations

import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from figures import record

from agent.app import HostAccess, collect_local
from agent.config import AgentConfig
from agent.delivery.spool import Spool, SpoolLimits
from agent.delivery.transport import HttpTransport
from agent.state.carry import CARRY_FILE
from tests.collector_process import running_collector

RUNS = int(os.environ.get("BENCH_RUNS", "5"))
CYCLES = int(os.environ.get("BENCH_CYCLES", "20"))
SPOOL_72H = int(os.environ.get("BENCH_SPOOL", str(72 * 4)))  # one per 15 minutes
BIN = Path(sys.executable).parent
PROGRESS = int(os.environ.get("BENCH_PROGRESS", "25"))
# glibc gives each thread that allocates its own malloc arena (up to 8 per core); the
# collectors run in threads, so a daemon running its cycles in a thread creeps. The
# baseline is the daemon as it was (a thread per cycle, glibc's default arenas).
ARENAS_2 = {"MALLOC_ARENA_MAX": "2"}
DAEMON_MODES: list[tuple[str, list[str], dict[str, str]]] = [
    ("cycle in a thread, glibc default arenas", ["--cycle", "thread"], {}),
    ("cycle in a thread, MALLOC_ARENA_MAX=2", ["--cycle", "thread"], ARENAS_2),
    ("cycle in a child process, glibc default arenas", ["--cycle", "process"], {}),
    ("cycle in a child process, MALLOC_ARENA_MAX=2", ["--cycle", "process"], ARENAS_2),
]
PICKED = os.environ.get("BENCH_MODES")
if PICKED:
    DAEMON_MODES = [DAEMON_MODES[int(n)] for n in PICKED.split(",")]


def reports(db: Path) -> int:
    with sqlite3.connect(db) as conn:
        return int(conn.execute("SELECT count(*) FROM reports").fetchone()[0])


def one_shot(argv: list[str]) -> tuple[float, int]:
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(process.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{argv} failed")
    return usage.ru_utime + usage.ru_stime, usage.ru_maxrss


def cpu_of(process: psutil.Process) -> float:
    times = process.cpu_times()
    return times.user + times.system + times.children_user + times.children_system


def children_uss(watched: psutil.Process) -> int:
    """The own memory (USS) of the daemon's cycle child (a fork: the daemon's command
    line); the collectors' commands (apt, dpkg-query...) are not counted, in either
    mode."""
    total = 0
    try:
        daemon_argv = watched.cmdline()
        children = watched.children()
    except psutil.Error:
        return 0
    for child in children:
        try:
            if child.cmdline() == daemon_argv:
                total += child.memory_full_info().uss
        except psutil.Error:
            continue  # it ended meanwhile
    return total


def settled(watched: psutil.Process) -> None:
    """Wait (briefly) until the cycle's children have ended: a child's CPU counts in
    its parent's only once it is reaped."""
    deadline = time.monotonic() + 5
    while watched.children() and time.monotonic() < deadline:
        time.sleep(0.01)


def daemon(
    name: str, agent_args: list[str], db: Path, env: dict[str, str]
) -> tuple[list[float], float, int, int, int]:
    """Per-cycle CPU deltas, the first cycle's CPU (start-up included), the daemon's
    RSS after the first cycle and at the end, and the peak of its RSS plus its
    children's USS (bytes)."""
    before = reports(db)
    process = subprocess.Popen(
        [str(BIN / "canhgac-agent"), "run", "--interval", "1s", *agent_args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, **env},
    )
    watched = psutil.Process(process.pid)
    deltas: list[float] = []
    first_rss, first_cpu, peak = 0, 0.0, 0
    seen, last_cpu = before, 0.0
    started = time.monotonic()
    try:
        while seen - before < CYCLES:
            time.sleep(0.05)
            peak = max(peak, watched.memory_info().rss + children_uss(watched))
            now = reports(db)
            if now == seen:
                continue
            settled(watched)
            cpu = cpu_of(watched)
            if seen == before:
                first_rss, first_cpu = watched.memory_info().rss, cpu
            else:
                deltas.append((cpu - last_cpu) / (now - seen))
            seen, last_cpu = now, cpu
            done = seen - before
            if PROGRESS and done % PROGRESS == 0:
                rss = watched.memory_info().rss / 2**20
                print(
                    f"  [{name}] {done}/{CYCLES} cycles, {time.monotonic() - started:.0f} s,"
                    f" RSS {rss:.1f} MiB, CPU per cycle (median so far)"
                    f" {statistics.median(deltas or [0.0]):.3f} s",
                    flush=True,
                )
        end_rss = watched.memory_info().rss
    finally:
        process.terminate()
        process.wait(timeout=60)
    return deltas, first_cpu, first_rss, end_rss, peak


def drain_72h(url: str, token: str, directory: Path) -> tuple[float, float]:
    """Seconds to drain a full spool with the default limits (capped rate, Retry-After
    honoured), and one report's median send time."""
    document = collect_local(AgentConfig(probe_listeners=False), HostAccess())
    document.pop("seq_epoch", None)
    transport = HttpTransport(url, token)
    singles = []
    for n in range(RUNS):
        doc = {**document, "report_id": str(uuid.uuid4()), "seq": 100_000 + n}
        start = time.perf_counter()
        transport.send(doc)
        singles.append(time.perf_counter() - start)
    time.sleep(2)  # the collector's rate bucket refills a little, as after an outage
    spool = Spool(directory, transport)
    for seq in range(1, SPOOL_72H + 1):
        spool.put({**document, "report_id": str(uuid.uuid4()), "seq": 200_000 + seq})
    start = time.perf_counter()
    while True:
        result = spool.drain()
        if not result.pending:
            break
        time.sleep(result.retry_in or 0.05)
    return time.perf_counter() - start, statistics.median(singles)


def main() -> None:
    with tempfile.TemporaryDirectory() as raw:
        tmp = Path(raw)
        db = tmp / "canhgac.db"
        db_url = f"sqlite:///{db}"
        with running_collector("--db", db_url, log_dir=tmp) as collector:
            out = subprocess.run(
                [str(BIN / "canhgac-server"), "token", "create", "--db", db_url, "--agency", "x"],
                capture_output=True,
                text=True,
                check=True,
            )
            token = out.stdout.strip().splitlines()[-1]
            token_file = tmp / "token"
            token_file.write_text(token + "\n")
            args = ["--server", collector.url, "--token-file", str(token_file)]
            args += ["--state-dir", str(tmp / "state")]
            argv = [str(BIN / "canhgac-agent"), "run", "--once", *args]
            carried = tmp / "state" / CARRY_FILE
            once, warm = [], []
            for _ in range(RUNS):
                carried.unlink(missing_ok=True)  # as before issue 9: nothing carried over
                once.append(one_shot(argv))
                warm.append(one_shot(argv))  # takes over what the previous run left
            once_cpu = statistics.median(c for c, _ in once)
            once_rss = statistics.median(r for _, r in once)
            warm_cpu = statistics.median(c for c, _ in warm)
            print(f"one-shot runs done; the daemon, {CYCLES} cycles per mode:", flush=True)
            runs = {name: daemon(name, [*args, *mode], db, env) for name, mode, env in DAEMON_MODES}
            drain, single = drain_72h(collector.url, token, tmp / "drain")
    one_shot_name = f"run --once, nothing carried, median of {RUNS}"
    record(
        "one-shot run --once CPU, nothing carried (as before)",
        once_cpu,
        "s",
        goal="< 1.5 CPU-s (a first collect)",
    )
    record(
        "one-shot run --once CPU, cache and skips carried from the previous run",
        warm_cpu,
        "s",
        baseline=once_cpu,
        baseline_name="nothing carried",
        goal="< 0.25 CPU-s (steady state)",
    )
    record("one-shot run --once peak RSS", once_rss / 1024, "MiB", goal="< 60 MB")
    base_growth: float | None = None
    for name, (deltas, first_cpu, first_rss, end_rss, peak) in runs.items():
        cycle_cpu = statistics.median(deltas)
        print(f"daemon `run --interval 1s`, {CYCLES} delivered cycles, {name}:")
        record(
            f"daemon CPU per cycle, {name}",
            cycle_cpu,
            "s",
            baseline=once_cpu,
            baseline_name=one_shot_name,
            goal="< 0.25 CPU-s",
        )
        record(f"daemon first cycle CPU, {name}", first_cpu, "s")
        record(
            f"daemon RSS at the end, {name}",
            end_rss / 2**20,
            "MiB",
            baseline=first_rss / 2**20,
            baseline_name="after the first cycle",
            goal="< 50 MB",
        )
        growth = (end_rss - first_rss) / 2**20
        record(
            f"daemon RSS growth over {CYCLES} cycles, {name}",
            growth,
            "MiB",
            baseline=base_growth,
            baseline_name=f"{DAEMON_MODES[0][0]}",
            goal="< 1 MB over 1,000 cycles",
        )
        base_growth = growth if base_growth is None else base_growth
        record(
            f"daemon peak RSS + its cycle child's USS, {name}",
            peak / 2**20,
            "MiB",
            goal="< 60 MB peak",
        )
    spacing = SpoolLimits().min_spacing_seconds
    alone = single * SPOOL_72H + spacing * (SPOOL_72H - 1)
    record(
        f"drain of a full spool ({SPOOL_72H} reports; 288 = 72 h), default cap",
        drain,
        "s",
        baseline=alone,
        baseline_name=f"one report alone x {SPOOL_72H} + the cap {spacing:g} s",
    )


if __name__ == "__main__":
    main()
