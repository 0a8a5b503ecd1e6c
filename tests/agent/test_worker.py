"""agent.worker: the daemon's work in a forked child process or in a thread.

Real forks and real signals: the child's pid, its memory, its handback and its end are
observed from the parent.
"""

from __future__ import annotations

import gc
import os
import signal
import threading
import time
from pathlib import Path

import pytest

from agent.worker import CycleMode, Ending, Handback, run_work

ALLOCATED: list[bytes] = []


def test_a_process_cycle_runs_in_a_child_and_hands_its_backoff_back(tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"

    def work() -> Handback:
        pid_file.write_text(str(os.getpid()))
        ALLOCATED.append(b"x" * 1024)  # the child's memory, gone with it
        return Handback(3, 1234.5)

    finished = run_work(CycleMode.PROCESS, work, threading.Event(), 5.0)

    assert finished.ending is Ending.DONE
    assert finished.handback == Handback(3, 1234.5)
    assert int(pid_file.read_text()) != os.getpid()
    assert ALLOCATED == []


def test_a_thread_cycle_runs_in_this_process(tmp_path: Path) -> None:
    seen: list[int] = []

    def work() -> None:
        seen.append(os.getpid())

    finished = run_work(CycleMode.THREAD, work, threading.Event(), 5.0)

    assert finished == type(finished)(Ending.DONE, None)
    assert seen == [os.getpid()]


def test_a_child_that_fails_hands_nothing_back() -> None:
    def work() -> Handback:
        raise RuntimeError("collector bug")

    finished = run_work(CycleMode.PROCESS, work, threading.Event(), 5.0)

    assert finished.ending is Ending.DONE
    assert finished.handback is None


def test_a_stop_asks_the_child_to_end_with_sigterm(tmp_path: Path) -> None:
    got = tmp_path / "got-sigterm"

    def work() -> Handback:
        ended = threading.Event()

        def on_term(signum: int, frame: object) -> None:
            got.write_text("yes")
            ended.set()

        signal.signal(signal.SIGTERM, on_term)
        ended.wait(30)
        return Handback(0, 0.0)

    stop = threading.Event()
    timer = threading.Timer(0.3, stop.set)
    timer.start()
    started = time.monotonic()
    finished = run_work(CycleMode.PROCESS, work, stop, 10.0)
    timer.join()

    assert finished.ending is Ending.DONE
    assert got.read_text() == "yes"
    assert time.monotonic() - started < 5


def test_a_child_outliving_the_grace_is_killed(tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"

    def work() -> Handback:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        pid_file.write_text(str(os.getpid()))
        time.sleep(60)
        return Handback(0, 0.0)

    stop = threading.Event()
    timer = threading.Timer(0.3, stop.set)
    timer.start()
    started = time.monotonic()
    finished = run_work(CycleMode.PROCESS, work, stop, 0.5)
    timer.join()

    assert finished.ending is Ending.ABANDONED
    assert time.monotonic() - started < 10
    with pytest.raises(ProcessLookupError):  # killed and reaped, not a zombie
        os.kill(int(pid_file.read_text()), 0)


def test_no_process_to_be_had_runs_the_cycle_in_a_thread(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A mock: the kernel refusing a fork (EAGAIN) cannot be caused here safely.
    def refused() -> int:
        raise BlockingIOError(11, "Resource temporarily unavailable")

    monkeypatch.setattr(os, "fork", refused)
    seen: list[int] = []

    def work() -> None:
        seen.append(os.getpid())

    finished = run_work(CycleMode.PROCESS, work, threading.Event(), 5.0)

    assert finished.ending is Ending.DONE
    assert seen == [os.getpid()]
    assert gc.get_freeze_count() == 0


def test_the_daemon_keeps_no_object_frozen_after_a_cycle() -> None:
    finished = run_work(CycleMode.PROCESS, lambda: None, threading.Event(), 5.0)
    assert finished.ending is Ending.DONE
    assert gc.get_freeze_count() == 0
