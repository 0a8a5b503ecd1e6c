"""One honest path through everything: real collector process, real agent process,
a real risky listener, then Prometheus exposition and the stored evidence."""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from tests.support import free_port

BIN = Path(sys.executable).parent
PACK = Path(__file__).resolve().parents[1] / "data" / "e2e" / "risky-port.yaml"
AGENCY = "so-tttt-e2e"


def run(*argv: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, f"{argv[0]} failed: {done.stdout}\n{done.stderr}"
    return done


@pytest.fixture
def risky_listener() -> Iterator[socket.socket]:
    # Listening on every address is what makes the port "exposed"; the test never
    # connects to it, and no traffic leaves the machine.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("0.0.0.0", 2323))
    sock.listen()
    yield sock
    sock.close()


@pytest.fixture
def collector(tmp_path: Path) -> Iterator[tuple[str, str]]:
    port = free_port()
    db_url = f"sqlite:///{tmp_path / 'canhgac.db'}"
    log = (tmp_path / "server.log").open("w")
    process = subprocess.Popen(
        [
            str(BIN / "canhgac-server"),
            "serve",
            "--listen",
            f"127.0.0.1:{port}",
            "--db",
            db_url,
            "--rules",
            str(PACK),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            assert process.poll() is None, (tmp_path / "server.log").read_text()
            try:
                if requests.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            assert time.monotonic() < deadline, "collector did not become healthy"
            time.sleep(0.1)
        yield url, db_url
    finally:
        process.terminate()
        process.wait(timeout=15)
        log.close()


def test_agent_report_reaches_metrics_with_evidence(
    risky_listener: socket.socket, collector: tuple[str, str], tmp_path: Path
) -> None:
    url, db_url = collector
    token = run(
        str(BIN / "canhgac-server"), "token", "create", "--db", db_url, "--agency", AGENCY
    ).stdout.strip()
    token_file = tmp_path / "token"
    token_file.write_text(token.splitlines()[-1] + "\n")
    token_file.chmod(0o600)

    run(
        str(BIN / "canhgac-agent"),
        "run",
        "--once",
        "--server",
        url,
        "--token-file",
        str(token_file),
        "--state-dir",
        str(tmp_path / "agent"),
    )

    metrics = requests.get(f"{url}/metrics", timeout=5).text
    samples = [s for family in text_string_to_metric_families(metrics) for s in family.samples]
    hostname = socket.gethostname()

    def value(name: str, **labels: str) -> float:
        found = [
            s.value
            for s in samples
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
        ]
        assert len(found) == 1, f"{name}{labels}: {found}"
        return found[0]

    mine = {"host": hostname, "agency": AGENCY}
    assert value("canhgac_host_info", **mine) == 1
    assert value("canhgac_host_rules_failing", severity="high", **mine) == 1
    assert value("canhgac_host_rules_failing", severity="medium", **mine) == 0
    assert value("canhgac_host_rules_failing", severity="critical", **mine) == 0
    # high (5) fails, medium (2) passes: score = 2 / (2 + 5)
    assert value("canhgac_host_score_ratio", **mine) == pytest.approx(2 / 7)
    last = value("canhgac_host_last_report_timestamp_seconds", **mine)
    assert abs(last - time.time()) < 120

    # The stored finding names the port, with the process that holds it.
    with sqlite3.connect(db_url.removeprefix("sqlite:///")) as db:
        rows = db.execute(
            "SELECT rule_id, item_key, status, evidence FROM findings WHERE rule_id = ?",
            ("E2E-RISKY-PORT-EXPOSED",),
        ).fetchall()
    assert [(r[0], r[1], r[2]) for r in rows] == [
        ("E2E-RISKY-PORT-EXPOSED", "tcp/0.0.0.0:2323", "open")
    ]
    evidence = json.loads(rows[0][3])
    assert evidence["port"] == 2323
    assert evidence["exposure"] == "all"
    if os.geteuid() == 0:  # as root the agent sees every socket's owner
        assert evidence["pid"] == os.getpid()
