"""SIGKILL during heavy ingest on SQLite: every acknowledged report survives, and
retrying the ones whose answer was lost stores none twice (issue 14).

A real `canhgac-server serve` on a real SQLite file takes reports from 6 agents
posting as fast as they can; after a moment it is killed (SIGKILL: no shutdown, no
checkpoint). A second collector on the same file must hold every report answered
`accepted`, pass SQLite's integrity check, and answer each unanswered report again
with 200 (stored now, or a duplicate), each report id stored exactly once.
"""

from __future__ import annotations

import signal
import sqlite3
import threading
from pathlib import Path

import requests

from tests.collector_process import running_collector

from .burst_agent import BurstAgent, wait_for_load
from .conftest import create_token

AGENCY = "so-test"
AGENTS = 6


class Agent(BurstAgent):
    def __init__(self, index: int, token: str) -> None:
        super().__init__(f"crash-agent-{index}", token)
        self.acknowledged: list[str] = []
        self.unanswered: list[bytes] = []  # bodies whose outcome is unknown
        self.unanswered_ids: list[str] = []

    def run(self, url: str, stop: threading.Event) -> None:
        while not stop.is_set():
            report_id, body = self.body()
            try:
                response = self.post(url, body)
            except requests.RequestException:
                self.unanswered.append(body)
                self.unanswered_ids.append(report_id)
                return  # the collector is gone
            if response.status_code == 200 and response.json()["status"] == "accepted":
                self.acknowledged.append(report_id)
            elif response.status_code not in (200, 429):
                raise AssertionError(f"unexpected answer {response.status_code}")


def _stored_ids(db_path: Path) -> list[str]:
    with sqlite3.connect(db_path) as connection:
        assert connection.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        return [row[0] for row in connection.execute("SELECT report_id FROM reports")]


def test_sigkill_during_ingest_loses_no_acknowledged_report(tmp_path: Path) -> None:
    db_path = tmp_path / "canhgac.db"
    db_url = f"sqlite:///{db_path}"
    agents: list[Agent] = []
    with running_collector("--db", db_url, log_dir=tmp_path) as served:
        for index in range(AGENTS):
            directory = tmp_path / f"agent{index}"
            directory.mkdir()
            agents.append(Agent(index, create_token(db_url, AGENCY, directory).read_text().strip()))
        stop = threading.Event()
        threads = [threading.Thread(target=a.run, args=(served.url, stop)) for a in agents]
        for thread in threads:
            thread.start()
        wait_for_load(lambda: sum(len(a.acknowledged) for a in agents), 20, 4.0)
        served.process.send_signal(signal.SIGKILL)
        served.process.wait()
        stop.set()
        for thread in threads:
            thread.join(60)
    acknowledged = [r for a in agents for r in a.acknowledged]
    assert len(acknowledged) > 20, "too little load to mean anything"
    stored = _stored_ids(db_path)
    assert set(acknowledged) <= set(stored)

    with running_collector("--db", db_url, log_dir=tmp_path) as again:
        for agent in agents:
            for body in agent.unanswered:
                answer = agent.post(again.url, body)
                assert answer.status_code == 200, answer.text
                assert answer.json()["status"] in {"accepted", "duplicate"}
                # A second retry is always the duplicate: never stored twice.
                assert agent.post(again.url, body).json()["status"] == "duplicate"
    final = _stored_ids(db_path)
    assert len(final) == len(set(final))
    assert set(acknowledged) | {r for a in agents for r in a.unanswered_ids} == set(final)
