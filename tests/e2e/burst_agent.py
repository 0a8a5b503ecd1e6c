"""A fake agent for the burst tests: posts changed facts as fast as it can.

Each report carries a new listener, so every one is a full write (evaluation,
results, findings), which is what the crash tests need to interrupt.
"""

from __future__ import annotations

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
