"""A fake agent for the burst tests: posts changed facts as fast as it can.

Each report carries a new listener, so every one is a full write (evaluation,
results, findings), which is what the crash tests need to interrupt.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import requests

from tests.server.helpers import body_of, make_facts, telnet


class BurstAgent:
    """An agent id, its token and its seq; subclasses keep their own bookkeeping."""

    def __init__(self, agent_id: str, token: str) -> None:
        self.agent_id = agent_id
        self.token = token
        self.seq = 0

    def body(self) -> tuple[str, bytes]:
        """The next report: (report id, gzip body)."""
        self.seq += 1
        facts = make_facts(
            agent_id=self.agent_id,
            seq=self.seq,
            collected_at=datetime.now(UTC) - timedelta(seconds=5),
            listening=[telnet(port=1000 + self.seq)],  # changed facts: a full write each time
        )
        return str(facts["report_id"]), body_of(facts, compress=True)

    def post(self, url: str, body: bytes) -> requests.Response:
        return requests.post(
            f"{url}/api/v1/reports",
            data=body,
            headers={"Authorization": f"Bearer {self.token}", "Content-Encoding": "gzip"},
            timeout=30,
        )


def wait_for_load(acknowledged: Callable[[], int], minimum: int, at_least: float) -> None:
    """Let the burst run `at_least` seconds and until more than `minimum` reports are
    acknowledged (at most a minute). A fixed sleep was not enough on a busy shared
    machine: 20 reports in 3 s, and the test failed its precondition instead of
    testing anything. The caller still asserts the count, so a collector that takes
    nothing in a minute fails the test."""
    started = time.monotonic()
    while time.monotonic() - started < 60:
        if time.monotonic() - started >= at_least and acknowledged() > minimum:
            return
        time.sleep(0.1)
