"""Running one piece of the daemon's work away from its main thread.

The daemon's main thread must stay free for signals and the stop bound, so each cycle
runs elsewhere, in one of two ways (`CycleMode`):

- `PROCESS` (the default): a forked child process that exits when the cycle ends.
  Whatever the cycle allocated (collector threads' malloc arenas, the facts, the HTTP
  connection) goes with the child, so the daemon's resident set stays what it was
  after start-up, cycle after cycle; a child that outlives the stop bound is killed,
  and a hung collector thread dies with it. What must outlive a cycle already lives
  in the state directory (sequence, spool, the updates cache and the watchdog's skips
  in `carried.json`); the spool's backoff comes back through a pipe (`Handback`).
- `THREAD`: a thread of the daemon's process. Cheaper by one fork per cycle, but
  glibc keeps the freed memory of the collectors' threads in per-thread arenas, so the
  resident set creeps (bench/agent_daemon.py measures both).

The parent must hold no other thread when it forks (a lock held by a thread that does
not exist in the child would never be released): in `PROCESS` mode the daemon runs
nothing in threads of its own.
"""

from __future__ import annotations

import contextlib
import enum
import gc
import json
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

POLL_SECONDS = 0.1
_MAX_HANDBACK = 4096


class CycleMode(enum.StrEnum):
    PROCESS = "process"
    THREAD = "thread"


class Ending(enum.Enum):
    """How a piece of work ended."""

    DONE = "done"
    # A stop was asked and the work outlived the grace: abandoned (thread) or killed.
    ABANDONED = "abandoned"


@dataclass(frozen=True)
class Handback:
    """What a child hands back to the daemon: the spool's backoff (failures, and the
    CLOCK_MONOTONIC instant before which no delivery is tried; that clock is the same
    for every process of the machine)."""

    failures: int = 0
    not_before: float = 0.0


@dataclass(frozen=True)
class Finished:
    ending: Ending
    handback: Handback | None = None  # None: the thread ran it, or the child said nothing


Work = Callable[[], Handback | None]


def run_work(
    mode: CycleMode, work: Work, stop: threading.Event, grace: float, name: str = "canhgac-cycle"
) -> Finished:
    """Run `work`; when `stop` is set, give it `grace` seconds to end."""
    if mode is CycleMode.THREAD:
        return _in_thread(work, stop, grace, name)
    return _in_child(work, stop, grace)


def _in_thread(work: Work, stop: threading.Event, grace: float, name: str) -> Finished:
    worker = threading.Thread(target=work, name=name, daemon=True)
    worker.start()
    stopped_at: float | None = None
    while worker.is_alive():
        worker.join(POLL_SECONDS)
        if stop.is_set():
            stopped_at = stopped_at or time.monotonic()
            if time.monotonic() - stopped_at > grace and worker.is_alive():
                return Finished(Ending.ABANDONED)
    return Finished(Ending.DONE)


def _in_child(work: Work, stop: threading.Event, grace: float) -> Finished:
    read_end, write_end = os.pipe()
    # What the parent buffered would otherwise be written twice, once by each process.
    sys.stdout.flush()
    sys.stderr.flush()
    # The child's collections would otherwise walk, and so write to, every object the
    # daemon holds, copying their pages: frozen, they stay shared with the parent.
    gc.freeze()
    try:
        pid = os.fork()
    except OSError:
        # No process to be had (EAGAIN, ENOMEM): this cycle runs in a thread instead.
        gc.unfreeze()
        os.close(read_end)
        os.close(write_end)
        return _in_thread(work, stop, grace, "canhgac-cycle")
    if pid == 0:  # pragma: no cover - the child; its effects are tested, not its lines
        os.close(read_end)
        _child(work, write_end)
    # The parent's own garbage stays collectable (the child keeps its frozen copy).
    gc.unfreeze()
    os.close(write_end)
    try:
        ending = _wait_child(pid, stop, grace)
        return Finished(ending, _read_handback(read_end) if ending is Ending.DONE else None)
    finally:
        os.close(read_end)


def _child(work: Work, write_end: int) -> None:  # pragma: no cover - runs in the child
    code = 0
    try:
        # The daemon's handlers came along with the fork: SIGTERM sets the child's own
        # stop event, so a drain stops between two reports. A reload is the parent's.
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
        handback = work()
        if handback is not None:
            payload = json.dumps([handback.failures, handback.not_before]).encode()
            os.write(write_end, payload[:_MAX_HANDBACK])
    except BaseException:  # noqa: BLE001 - the work logs its own failures; this only ends the child
        code = 1
    finally:
        with contextlib.suppress(OSError, ValueError):
            sys.stdout.flush()
            sys.stderr.flush()
        # Not sys.exit: the parent's atexit handlers and the cycle's hung collector
        # threads are not the child's to wait for.
        os._exit(code)


def _wait_child(pid: int, stop: threading.Event, grace: float) -> Ending:
    stopped_at: float | None = None
    while True:
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done:
            return Ending.DONE
        if stop.is_set():
            now = time.monotonic()
            if stopped_at is None:
                stopped_at = now
                _signal(pid, signal.SIGTERM)  # the child stops between two reports
            elif now - stopped_at > grace:
                # Safe: a report is renamed into the spool whole, removed after a 2xx.
                _signal(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                return Ending.ABANDONED
        time.sleep(POLL_SECONDS)


def _signal(pid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):  # it ended meanwhile: reaped next poll
        os.kill(pid, signum)


def _read_handback(read_end: int) -> Handback | None:
    """The child's handback, None when it wrote none (it failed, or had nothing)."""
    try:
        raw = os.read(read_end, _MAX_HANDBACK)
        failures, not_before = json.loads(raw) if raw else (None, None)
    except (OSError, ValueError, TypeError):
        return None
    if not isinstance(failures, int) or not isinstance(not_before, int | float):
        return None
    return Handback(failures, float(not_before))
