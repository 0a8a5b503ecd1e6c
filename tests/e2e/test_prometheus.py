"""Real Prometheus (Debian's package) scrapes the collector; promtool lints the exposition.

This is how the security team consumes canhgac: if Prometheus cannot scrape or query
a series, no Grafana panel or alert will work, whatever the exposition text says.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.support import require_tool

from .conftest import create_token, run_agent_once
from .prometheus_process import running_prometheus

AGENCY = "so-tttt-prom"


@pytest.fixture
def prometheus(collector: tuple[str, str], tmp_path: Path) -> Iterator[str]:
    binary = require_tool("prometheus")
    with running_prometheus(binary, collector[0], tmp_path) as url:
        yield url


def query(prometheus_url: str, expr: str) -> list[dict[str, Any]]:
    reply = requests.get(f"{prometheus_url}/api/v1/query", params={"query": expr}, timeout=5)
    reply.raise_for_status()
    result: list[dict[str, Any]] = reply.json()["data"]["result"]
    return result


@pytest.mark.integration
def test_prometheus_scrapes_host_series(
    risky_listener: object, collector: tuple[str, str], prometheus: str, tmp_path: Path
) -> None:
    url, db_url = collector
    run_agent_once(url, create_token(db_url, AGENCY, tmp_path), tmp_path / "agent")

    expr = f'canhgac_host_rules_failing{{agency="{AGENCY}",severity="high"}}'
    deadline = time.monotonic() + 60
    result: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        try:
            result = query(prometheus, expr)
        except requests.RequestException:
            result = []
        if result:
            break
        time.sleep(0.5)
    assert result, f"Prometheus never returned {expr}"
    (series,) = result
    assert series["metric"]["job"] == "canhgac"
    assert "instance" in series["metric"]  # Prometheus' own target label, not ours
    assert float(series["value"][1]) == 1.0

    (score,) = query(prometheus, f'canhgac_host_score_ratio{{agency="{AGENCY}"}}')
    assert float(score["value"][1]) == pytest.approx(2 / 7)
    up = query(prometheus, 'up{job="canhgac"}')
    assert [float(s["value"][1]) for s in up] == [1.0]


@pytest.mark.integration
def test_exposition_passes_promtool_lint(
    risky_listener: object, collector: tuple[str, str], tmp_path: Path
) -> None:
    promtool = require_tool("promtool")
    url, db_url = collector
    run_agent_once(url, create_token(db_url, AGENCY, tmp_path), tmp_path / "agent")
    exposition = requests.get(f"{url}/metrics", timeout=5).text
    assert "canhgac_host_info" in exposition
    lint = subprocess.run(
        [promtool, "check", "metrics"],
        input=exposition,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert lint.returncode == 0, lint.stdout + lint.stderr
