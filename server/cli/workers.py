"""`serve --workers N`: N worker processes serving one listening socket (pre-fork).

`serve` binds the socket and migrates the database once, then `fork_workers` forks;
each worker goes on as a one-process `serve` would: it opens its own database engine
(connections are never shared across a fork), builds its own application and serves
the inherited socket, the kernel spreading connections between the workers. Each
worker is a replica as docs/collector.md describes several collectors on one
database: its own in-memory host state, refreshed from the database; the policy
reloaded on change; re-evaluation under the lease of `server.evaluation.reeval`, so
it runs once for all of them.

The parent only supervises: SIGTERM and SIGINT stop every worker (each finishes its
requests, as uvicorn does on SIGTERM), SIGHUP is passed on (policy reload). A worker
that ends on its own stops the others and `serve` exits with its status, so that the
service manager restarts the whole collector rather than leaving it short of a worker.
"""

from __future__ import annotations

import os
import signal
import sys
from contextlib import suppress
from types import FrameType

_FORWARDED = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


def fork_workers(count: int) -> int:
    """In a worker: its index (0 to count - 1). The parent supervises the workers and
    exits with their outcome: this call never returns there."""
    children: dict[int, int] = {}
    for index in range(count):
        pid = os.fork()
        if pid == 0:
            for signum in _FORWARDED:
                signal.signal(signum, signal.SIG_DFL)  # uvicorn installs its own
            return index
        children[pid] = index
    sys.exit(supervise(children))


def supervise(children: dict[int, int]) -> int:
    """Wait for every worker; the exit status `serve` should end with."""
    stopping = False
    status = 0

    def signal_all(signum: int) -> None:
        for pid in children:
            with suppress(ProcessLookupError):
                os.kill(pid, signum)

    def forward(signum: int, _frame: FrameType | None) -> None:
        nonlocal stopping
        if signum == signal.SIGHUP:
            signal_all(signal.SIGHUP)
            return
        stopping = True
        # SIGTERM, not SIGINT: a terminal's Ctrl-C already gave the workers a SIGINT,
        # and a second SIGINT would make uvicorn drop requests in flight.
        signal_all(signal.SIGTERM)

    for signum in _FORWARDED:
        signal.signal(signum, forward)
    while children:
        try:
            pid, wait_status = os.wait()
        except ChildProcessError:
            break
        if children.pop(pid, None) is None:
            continue
        code = os.waitstatus_to_exitcode(wait_status)
        if not stopping:
            stopping = True
            status = code if code > 0 else 1
            signal_all(signal.SIGTERM)
        elif code > 0 and status == 0:
            status = code
    return status
