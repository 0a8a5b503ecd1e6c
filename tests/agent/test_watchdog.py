"""The watchdog, with real runaway children: a command spinning the CPU is stopped by
its RLIMIT_CPU, one allocating without end fails at its RLIMIT_DATA, and the
collector that ran it is reported and skipped for a while, then runs again."""

from __future__ import annotations

import io
import threading
import time
from typing import Any

import pytest

from agent.collectors.base import CollectContext, Collected, ErrorKind, Issue, run_tool
from agent.daemon import Daemon
from agent.document import Watchdog, run_collectors
from agent.output.events import EventLog
from agent.runner import MIB, ChildLimits, CommandOverBudget, SubprocessRunner, take_overruns
from rules.facts import Domain
from tests.support import require_tool

SPIN = ["-c", "while :; do :; done"]
# Allocates 256 MiB and touches it: over a 64 MiB data limit.
HOG = ["-c", "b = bytearray(256 * 2**20); print(len(b))"]


def _in_thread(name: str, fn: Any) -> Any:
    out: list[Any] = []

    def run() -> None:
        try:
            out.append(fn())
        except Exception as e:  # handed back to the test to assert on
            out.append(e)

    thread = threading.Thread(target=run, name=name)
    thread.start()
    thread.join(30)
    assert not thread.is_alive()
    return out[0]


def test_a_spinning_child_is_stopped_at_its_cpu_limit() -> None:
    sh = require_tool("sh")
    runner = SubprocessRunner(limits=ChildLimits(cpu_seconds=1))
    started = time.monotonic()
    error = _in_thread("collector-spin", lambda: runner([sh, *SPIN], timeout=30))
    elapsed = time.monotonic() - started
    assert isinstance(error, CommandOverBudget)
    assert str(error) == "sh stopped: over its CPU budget of 1 s"
    assert elapsed < 10, elapsed  # the CPU limit, not the 30 s timeout, ended it
    assert take_overruns("collector-spin") == ["sh stopped: over its CPU budget of 1 s"]
    assert take_overruns("collector-spin") == []


def test_a_child_allocating_too_much_fails_at_its_memory_limit() -> None:
    python = require_tool("python3")
    runner = SubprocessRunner(limits=ChildLimits(data_bytes=64 * MIB))
    error = _in_thread("collector-hog", lambda: runner([python, *HOG], timeout=30))
    assert isinstance(error, CommandOverBudget)
    assert str(error) == "python3 failed at its memory budget of 64 MiB"
    # The same program within its limit: the limit, not the program, failed it.
    roomy = SubprocessRunner(limits=ChildLimits(data_bytes=512 * MIB))
    assert roomy([python, *HOG], timeout=30).stdout.strip() == str(256 * 2**20)


def test_ordinary_commands_run_under_the_default_limits() -> None:
    apt = require_tool("apt")
    result = SubprocessRunner()([apt, "list", "--upgradable"], timeout=60)
    assert result.ok, result.stderr


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_collector_over_budget_is_logged_skipped_then_runs_again() -> None:
    sh = require_tool("sh")
    clock = _Clock()
    watchdog = Watchdog(skip_seconds=600, clock=clock)
    told: list[tuple[Domain, str]] = []
    watchdog.listener = lambda domain, reason: told.append((domain, reason))
    ctx = CollectContext(run=SubprocessRunner(limits=ChildLimits(cpu_seconds=1)))
    calls: list[str] = []

    def runaway(ctx: CollectContext) -> Collected:
        calls.append("runaway")
        return Collected(run_tool(ctx, [sh, *SPIN], timeout=30))

    def quiet(ctx: CollectContext) -> Collected:
        calls.append("quiet")
        return Collected({"ok": True})

    collectors = {Domain.FIREWALL: runaway, Domain.TIME: quiet}
    first = run_collectors(ctx, collectors, 60, watchdog=watchdog)
    assert first[Domain.FIREWALL] == Issue(
        ErrorKind.FAILED, "sh stopped: over its CPU budget of 1 s"
    )
    assert first[Domain.TIME] == Collected({"ok": True})
    assert told == [(Domain.FIREWALL, "sh stopped: over its CPU budget of 1 s")]

    clock.now += 300
    second = run_collectors(ctx, collectors, 60, watchdog=watchdog)
    assert second[Domain.FIREWALL] == Issue(
        ErrorKind.SKIPPED,
        "skipped by the watchdog for 5 more min: sh stopped: over its CPU budget of 1 s",
    )
    assert list(second) == [Domain.FIREWALL, Domain.TIME]  # the document's order kept
    assert calls == ["runaway", "quiet", "quiet"] or calls == ["quiet", "runaway", "quiet"]

    clock.now += 301
    third = run_collectors(ctx, collectors, 60, watchdog=watchdog)
    again = third[Domain.FIREWALL]
    assert isinstance(again, Issue)
    assert again.kind is ErrorKind.FAILED  # ran (and ran away) again
    assert calls.count("runaway") == 2


def test_a_collector_burning_its_own_cpu_is_stopped_after_the_cycle() -> None:
    watchdog = Watchdog(cpu_budget=0.2)

    def busy(ctx: CollectContext) -> Collected:
        ends = time.thread_time() + 0.4
        while time.thread_time() < ends:
            pass
        return Collected([])

    outcome = run_collectors(CollectContext(), {Domain.SYSCTL: busy}, 30, watchdog=watchdog)
    assert outcome[Domain.SYSCTL] == Collected([])  # this cycle's result is kept
    why = watchdog.skipped(Domain.SYSCTL)
    assert why is not None
    assert why.startswith("skipped by the watchdog for 60 more min: used 0.")
    assert why.endswith(" CPU-s, over its budget of 0.2")


@pytest.mark.parametrize("cpu", [0.0, 0.19])
def test_within_budget_nothing_is_skipped(cpu: float) -> None:
    watchdog = Watchdog(cpu_budget=0.2)
    watchdog.check(Domain.SSH, cpu, [])
    assert watchdog.skipped(Domain.SSH) is None


@pytest.mark.parametrize(
    ("lang", "line"),
    [
        (
            "en",
            "collector firewall went over its resource budget; skipped for 60 min: "
            "sh stopped: over its CPU budget of 1 s",
        ),
        ("vi", "bộ thu thập firewall vượt giới hạn tài nguyên; tạm bỏ qua 60 phút"),
    ],
)
def test_the_daemon_logs_a_stop_with_the_collector_name(lang: str, line: str) -> None:
    watchdog = Watchdog()
    stream = io.StringIO()
    Daemon(_no_setup, EventLog(stream), lang, watchdog=watchdog)
    watchdog.stop(Domain.FIREWALL, "sh stopped: over its CPU budget of 1 s")
    (logged,) = stream.getvalue().splitlines()
    assert logged.split(" ", 1)[1] == f"warning collector_stopped: {line}"
    assert watchdog.skipped(Domain.FIREWALL) is not None


def _no_setup() -> Any:
    raise AssertionError("the daemon is not started here")


def test_a_hung_collector_is_not_started_again_while_it_still_runs() -> None:
    watchdog = Watchdog()
    release = threading.Event()
    started: list[int] = []

    def hung(ctx: CollectContext) -> Collected:
        started.append(1)
        release.wait(30)
        return Collected([])

    first = run_collectors(CollectContext(), {Domain.AUDIT: hung}, 0.2, watchdog=watchdog)
    assert first[Domain.AUDIT] == Issue(ErrorKind.TIMEOUT, "collector did not finish within 0.2s")
    second = run_collectors(CollectContext(), {Domain.AUDIT: hung}, 0.2, watchdog=watchdog)
    assert second[Domain.AUDIT] == Issue(
        ErrorKind.SKIPPED, "skipped: its previous run, abandoned at its time limit, still runs"
    )
    assert len(started) == 1
    release.set()
    for _ in range(100):
        if watchdog.skipped(Domain.AUDIT) is None:
            break
        time.sleep(0.05)
    third = run_collectors(CollectContext(), {Domain.AUDIT: hung}, 5, watchdog=watchdog)
    assert third[Domain.AUDIT] == Collected([])
    assert len(started) == 2
