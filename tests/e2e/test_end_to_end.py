"""One honest path through everything: real collector process, real agent process,
a real risky listener, then Prometheus exposition and the stored evidence."""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import time
from pathlib import Path

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from .conftest import RISKY_RULE, create_token, run_agent_once

AGENCY = "so-tttt-e2e"


def test_agent_report_reaches_metrics_with_evidence(
    risky_listener: socket.socket, collector: tuple[str, str], tmp_path: Path
) -> None:
    url, db_url = collector
    port = int(risky_listener.getsockname()[1])
    token_file = create_token(db_url, AGENCY, tmp_path)
    run_agent_once(url, token_file, tmp_path / "agent")

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
    # A severity with nothing failing exports no series (docs/metrics.md: zero-valued
    # series that carry no information are not exported), never a wrong value.
    for severity in ("medium", "critical"):
        assert not [
            s
            for s in samples
            if s.name == "canhgac_host_rules_failing"
            and s.labels.get("severity") == severity
            and s.labels.get("host") == hostname
        ]
    # high (5) fails, medium (2) passes: score = 2 / (2 + 5)
    assert value("canhgac_host_score_ratio", **mine) == pytest.approx(2 / 7)
    last = value("canhgac_host_last_report_timestamp_seconds", **mine)
    assert abs(last - time.time()) < 120

    # The stored finding names the port, with the process that holds it.
    with sqlite3.connect(db_url.removeprefix("sqlite:///")) as db:
        rows = db.execute(
            "SELECT rule_id, item_key, status, evidence FROM findings WHERE rule_id = ?",
            (RISKY_RULE,),
        ).fetchall()
    assert [(r[0], r[1], r[2]) for r in rows] == [(RISKY_RULE, f"tcp/0.0.0.0:{port}", "open")]
    evidence = json.loads(rows[0][3])
    assert evidence["port"] == port
    assert evidence["exposure"] == "all"
    if os.geteuid() == 0:  # as root the agent sees every socket's owner
        assert evidence["pid"] == os.getpid()
