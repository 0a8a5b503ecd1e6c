"""PostgreSQL crashed and restarted under heavy ingest (issue 14): every acknowledged
report survives, the collector recovers by itself, and retries store nothing twice.

A private PostgreSQL cluster (never the shared dev one) serves a real `canhgac-server
serve`; 6 agents post as fast as they can. The cluster is stopped with `-m immediate`
(no checkpoint: WAL recovery at the next start) while they post, kept down a moment
(the collector must answer 503, nothing else), and started again. The same
collector process, not restarted, must take reports again; each report whose answer
was 503 or lost is retried until answered; then every acknowledged report is stored,
each report id once, and nothing else.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import requests
import sqlalchemy as sa

from tests.collector_process import running_collector

from .burst_agent import BurstAgent, wait_for_load
from .conftest import create_token
from .private_postgres import private_postgres

AGENCY = "so-test"
AGENTS = 6


class Agent(BurstAgent):
    def __init__(self, index: int, token: str) -> None:
        super().__init__(f"pg-crash-agent-{index}", token)
        self.acknowledged: list[str] = []
        self.pending: dict[str, bytes] = {}  # report id -> body: refused (503) or unanswered
        self.statuses: list[int] = []

    def send(self, url: str, report_id: str, body: bytes) -> bool:
        """True when the collector answered for the report (accepted or duplicate)."""
        try:
            response = self.post(url, body)
        except requests.RequestException:
            self.pending[report_id] = body
            return False
        self.statuses.append(response.status_code)
        if response.status_code == 200 and response.json()["status"] in {"accepted", "duplicate"}:
            self.acknowledged.append(report_id)
            self.pending.pop(report_id, None)
            return True
        self.pending[report_id] = body
        return False

    def run(self, url: str, stop: threading.Event) -> None:
        while not stop.is_set():
            report_id, body = self.body()
            if not self.send(url, report_id, body):
                time.sleep(0.05)  # an agent backs off; not a busy loop on a down database


def _stored_ids(url: str) -> list[str]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as connection:
            return [row[0] for row in connection.execute(sa.text("SELECT report_id FROM reports"))]
    finally:
        engine.dispose()


def test_postgres_restarted_under_ingest_loses_and_duplicates_nothing(tmp_path: Path) -> None:
    with private_postgres() as cluster:
        db_url = cluster.url
        with running_collector("--db", db_url, log_dir=tmp_path) as served:
            agents = []
            for index in range(AGENTS):
                directory = tmp_path / f"agent{index}"
                directory.mkdir()
                token = create_token(db_url, AGENCY, directory).read_text().strip()
                agents.append(Agent(index, token))
            stop = threading.Event()
            threads = [threading.Thread(target=a.run, args=(served.url, stop)) for a in agents]
            for thread in threads:
                thread.start()
            wait_for_load(lambda: sum(len(a.acknowledged) for a in agents), 20, 3.0)
            before_crash = sum(len(a.acknowledged) for a in agents)
            cluster.crash()
            time.sleep(2)
            during_outage = [s for a in agents for s in a.statuses]
            cluster.start()
            time.sleep(4)
            stop.set()
            for thread in threads:
                thread.join(60)
            after_restart = sum(len(a.acknowledged) for a in agents) - before_crash
            # Retry what was refused or lost, as the agents' spools would, until answered.
            deadline = time.monotonic() + 90
            while any(a.pending for a in agents) and time.monotonic() < deadline:
                for agent in agents:
                    for report_id, body in list(agent.pending.items()):
                        agent.send(served.url, report_id, body)
                time.sleep(0.2)
            assert not any(a.pending for a in agents), "reports never accepted after restart"
            ready = requests.get(f"{served.url}/readyz", timeout=30)
            assert ready.status_code == 200, ready.text
        statuses = {s for a in agents for s in a.statuses}
        assert before_crash > 20, "too little load to mean anything"
        assert 503 in during_outage, "the database went down without the load noticing"
        assert after_restart > 0, "the collector took nothing after the database came back"
        assert statuses <= {200, 429, 503}, statuses  # down database: 503, never a 500
        acknowledged = [r for a in agents for r in a.acknowledged]
        stored = _stored_ids(db_url)
        assert len(stored) == len(set(stored)), "a report stored twice"
        assert set(acknowledged) == set(stored)
