"""`canhgac-server serve --workers N`: real worker processes on one socket, on SQLite
and PostgreSQL; reports from concurrent agents all stored once; SIGTERM stops every
worker; a worker that dies takes the collector down (for the service manager to
restart) instead of leaving it short of a worker."""

from __future__ import annotations

import os
import signal
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
import yaml

from tests.collector_process import CollectorProcess, running_collector
from tests.server.helpers import RULES_DIR, make_facts, telnet

from .conftest import BIN, run

AGENCY = "so-workers"
TIMEOUT = 30


def server(*args: str) -> str:
    return run(str(BIN / "canhgac-server"), *args).stdout.strip()


def children(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            if int(stat[stat.rfind(")") + 2 :].split()[1]) == pid:
                found.append(int(entry))
    return found


@pytest.fixture
def workers(db_url: str, tmp_path: Path) -> Iterator[tuple[CollectorProcess, Path]]:
    config = tmp_path / "config.yaml"
    config.write_text(
        yaml.safe_dump(
            {"server": {"db_url": db_url, "rules": [str(RULES_DIR)]}},
        ),
        "utf-8",
    )
    # No `db upgrade` first: the parent migrates once, before forking.
    args = ("--config", str(config), "--workers", "3", "--log-level", "warning")
    with running_collector(*args, log_dir=tmp_path) as collector:
        yield collector, config


def test_workers_share_the_socket_and_store_every_report_once(
    workers: tuple[CollectorProcess, Path],
) -> None:
    collector, config = workers
    deadline = time.monotonic() + 10
    while len(children(collector.process.pid)) < 3 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert len(children(collector.process.pid)) == 3
    server("agency", "add", AGENCY, "--name", "Sở thử nghiệm", "--config", str(config))
    secret = server("agency", "enrol-secret", AGENCY, "--config", str(config))
    viewer = server("api-token", "create", "--name", "e2e", "--config", str(config))
    tokens = []
    for index in range(6):
        enrolled = requests.post(
            f"{collector.url}/api/v1/enroll",
            json={"agent_id": f"agent-{index}", "hostname": f"web{index}"},
            headers={"Authorization": f"Bearer {secret}"},
            timeout=TIMEOUT,
        )
        assert enrolled.status_code == 200, enrolled.text
        tokens.append(enrolled.json()["token"])

    def post(job: tuple[int, int]) -> int:
        index, seq = job
        facts = make_facts(
            agent_id=f"agent-{index}",
            hostname=f"web{index}",
            seq=seq,
            report_id=str(uuid.uuid4()),
            listening=[telnet()] if seq % 2 else [],
        )
        answer = requests.post(
            f"{collector.url}/api/v1/reports",
            json=facts,
            headers={"Authorization": f"Bearer {tokens[index]}"},
            timeout=TIMEOUT,
        )
        assert answer.status_code == 200, answer.text
        return int(answer.json()["failing"])

    jobs = [(index, seq) for seq in (1, 2, 3) for index in range(6)]
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(post, jobs))
    hosts = requests.get(
        f"{collector.url}/api/v1/hosts",
        headers={"Authorization": f"Bearer {viewer}"},
        timeout=TIMEOUT,
    )
    assert hosts.status_code == 200, hosts.text
    listed = hosts.json()
    items = listed["items"] if isinstance(listed, dict) else listed
    assert sorted(h["hostname"] for h in items) == [f"web{i}" for i in range(6)]


def test_sigterm_stops_every_worker(workers: tuple[CollectorProcess, Path]) -> None:
    collector, _ = workers
    deadline = time.monotonic() + 10
    while len(children(collector.process.pid)) < 3 and time.monotonic() < deadline:
        time.sleep(0.1)
    pids = children(collector.process.pid)
    assert len(pids) == 3
    assert collector.stop(signal.SIGTERM) == 0
    for pid in pids:
        assert not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text()


def test_a_dead_worker_takes_the_collector_down(workers: tuple[CollectorProcess, Path]) -> None:
    collector, _ = workers
    deadline = time.monotonic() + 10
    while len(children(collector.process.pid)) < 3 and time.monotonic() < deadline:
        time.sleep(0.1)
    pids = children(collector.process.pid)
    os.kill(pids[0], signal.SIGKILL)
    assert collector.process.wait(timeout=20) != 0
    time.sleep(0.2)
    for pid in pids[1:]:
        assert not Path(f"/proc/{pid}").exists()
