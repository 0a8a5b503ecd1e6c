"""Two real `canhgac-server serve` processes on one PostgreSQL database, as behind a
load balancer: enrol on one, report on the other, and every answer is the same."""

from __future__ import annotations

import shutil
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

from tests.collector_process import CollectorProcess, running_collector
from tests.server.helpers import RULES_DIR, make_facts, telnet
from tests.server.pg import pg_base_url, temporary_pg_database

from .conftest import BIN, run

AGENCY = "so-replicas"
TIMEOUT = 30


def server(*args: str) -> str:
    return run(str(BIN / "canhgac-server"), *args).stdout.strip()


@pytest.fixture
def database_url() -> Iterator[str]:
    with temporary_pg_database(pg_base_url()) as url:
        yield url


@pytest.fixture
def replicas(
    database_url: str, tmp_path: Path
) -> Iterator[tuple[list[str], Path, list[CollectorProcess]]]:
    rules = tmp_path / "rules"
    shutil.copytree(RULES_DIR, rules)
    config = tmp_path / "config.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "server": {
                    "db_url": database_url,
                    "rules": [str(rules)],
                    "metrics_refresh_seconds": 0.3,
                    "policy_check_seconds": 3600,
                }
            }
        ),
        "utf-8",
    )
    server("db", "upgrade", "--config", str(config))  # the deploy step
    args = ("--config", str(config), "--no-migrate", "--log-level", "warning")
    with (
        running_collector(*args, log_dir=tmp_path) as first,
        running_collector(*args, log_dir=tmp_path) as second,
    ):
        yield [first.url, second.url], config, [first, second]


def get(url: str, path: str, token: str) -> Any:
    response = requests.get(
        f"{url}/api/v1{path}", headers={"Authorization": f"Bearer {token}"}, timeout=TIMEOUT
    )
    assert response.status_code == 200, response.text
    return response.json()


def post_report(url: str, token: str, facts: dict[str, Any]) -> requests.Response:
    return requests.post(
        f"{url}/api/v1/reports",
        json=facts,
        headers={"Authorization": f"Bearer {token}"},
        timeout=TIMEOUT,
    )


def same_everywhere(urls: list[str], path: str, token: str) -> Any:
    answers = [get(url, path, token) for url in urls]
    assert answers[0] == answers[1], path
    return answers[0]


def test_two_replicas_give_the_same_answers(
    replicas: tuple[list[str], Path, list[CollectorProcess]], tmp_path: Path
) -> None:
    (first, second), config, processes = replicas
    server("agency", "add", AGENCY, "--name", "Sở thử nghiệm", "--config", str(config))
    secret = server("agency", "enrol-secret", AGENCY, "--config", str(config))
    viewer = server("api-token", "create", "--name", "e2e", "--config", str(config))

    enrolled = requests.post(
        f"{first}/api/v1/enroll",
        json={"agent_id": "agent-e2e", "hostname": "web01"},
        headers={"Authorization": f"Bearer {secret}"},
        timeout=TIMEOUT,
    )
    assert enrolled.status_code == 200, enrolled.text
    token = enrolled.json()["token"]
    again = requests.post(
        f"{second}/api/v1/enroll",
        json={"agent_id": "agent-e2e", "hostname": "web01"},
        headers={"Authorization": f"Bearer {secret}"},
        timeout=TIMEOUT,
    )
    assert again.status_code == 409  # the other replica knows it is enrolled

    facts = make_facts(agent_id="agent-e2e", hostname="web01", listening=[telnet()])
    stored = post_report(second, token, facts)
    assert stored.status_code == 200 and stored.json()["duplicate"] is False
    duplicate = post_report(first, token, facts)  # a retry landing on the other replica
    assert duplicate.status_code == 200 and duplicate.json()["duplicate"] is True

    hosts = same_everywhere([first, second], "/hosts", viewer)
    assert [h["agent_id"] for h in hosts["items"]] == ["agent-e2e"]
    detail = same_everywhere([first, second], "/hosts/agent-e2e", viewer)
    assert detail["score"] == pytest.approx(3 / 13)
    findings = same_everywhere([first, second], "/findings", viewer)
    assert [f["rule_id"] for f in findings["items"]] == ["TEST-TELNET"]
    same_everywhere([first, second], "/agencies", viewer)

    # metrics: each replica's in-memory state converges on the shared database
    for url in (first, second):
        deadline = time.monotonic() + 10
        while 'canhgac_host_score_ratio{agency="so-replicas",host="web01"}' not in (
            requests.get(f"{url}/metrics", timeout=TIMEOUT).text
        ):
            assert time.monotonic() < deadline, f"{url} never showed the host"
            time.sleep(0.2)

    # policy change: new files on every replica, SIGHUP to one; it re-evaluates for all
    pack = yaml.safe_load((RULES_DIR / "server-tests.yaml").read_text("utf-8"))
    pack["rules"] = [r for r in pack["rules"] if r["id"] != "TEST-TELNET"]
    rules_file = next((tmp_path / "rules").glob("*.yaml"))
    rules_file.write_text(yaml.safe_dump(pack, allow_unicode=True), "utf-8")
    processes[0].process.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 20
    while get(second, "/hosts/agent-e2e", viewer)["score"] != 1.0:
        assert time.monotonic() < deadline, "the host was never re-evaluated"
        time.sleep(0.2)
    resolved = same_everywhere([first, second], "/findings", viewer)
    assert [f["status"] for f in resolved["items"]] == ["resolved"]

    # revocation through the CLI: refused at once by both replicas
    server("agent", "revoke", "agent-e2e", "--config", str(config))
    later = make_facts(agent_id="agent-e2e", hostname="web01", seq=2)
    assert post_report(first, token, later).status_code == 401
    assert post_report(second, token, later).status_code == 401
