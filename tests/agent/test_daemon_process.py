"""The daemon with its cycles in child processes (the default) or in threads: during an
outage the spool's backoff, moved in the child that tried, holds in the daemon too, so
a kept report is retried when the backoff ends, not in a loop of forks.

A real daemon loop in this process, real forks, a real refused connection on loopback
(a closed port), stopped by a real SIGTERM.
"""

from __future__ import annotations

import json
import os
import random
import signal
import threading
from pathlib import Path

import pytest

from agent.config import AgentConfig
from agent.daemon import Daemon, Setup
from agent.delivery.spool import Spool
from agent.delivery.transport import HttpTransport
from agent.output.events import EventLog, LogFormat
from agent.worker import CycleMode
from tests.support import free_port


class _LateFirstCycle(random.Random):
    """The first cycle as late as allowed (10 s), so the test sees only the retries."""

    def uniform(self, a: float, b: float) -> float:
        return b


@pytest.mark.parametrize("mode", list(CycleMode))
def test_an_outage_backs_off_in_the_daemon_whatever_runs_the_retry(
    mode: CycleMode, tmp_path: Path
) -> None:
    transport = HttpTransport(f"http://127.0.0.1:{free_port()}", "t", timeout=2)
    spool = Spool(tmp_path / "state", transport)
    spool.put({"report_id": "r-1", "seq": 1})

    def load() -> Setup:
        return Setup(AgentConfig(), tmp_path / "state", spool, 3600.0)

    log_path = tmp_path / "log.jsonl"
    previous = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)}
    timer = threading.Timer(2.5, os.kill, (os.getpid(), signal.SIGTERM))
    with log_path.open("w") as stream:
        daemon = Daemon(
            load, EventLog(stream, LogFormat.JSON), "en", rng=_LateFirstCycle(), mode=mode
        )
        timer.start()
        try:
            assert daemon.run() is True
        finally:
            timer.cancel()
            for signum, handler in previous.items():
                signal.signal(signum, handler)
    events = [json.loads(line)["event"] for line in log_path.read_text().splitlines()]

    # One attempt, then the backoff (at least 2.5 s after a first failure) holds.
    assert events.count("not_delivered") == 1, events
    assert spool.count() == 1
    assert spool.retry_in() > 0
