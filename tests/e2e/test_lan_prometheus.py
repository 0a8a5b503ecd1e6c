"""LAN devices through the whole chain: reports with a `discovery` domain uploaded to a
real `canhgac-server serve`, `canhgac_lan_devices` scraped by Debian's Prometheus, and
the new-unmanaged-device alert evaluated by that Prometheus: quiet while the count
holds, firing when a device nobody enrolled joins.

The alert is loaded with its window shortened (a day and an hour become 20 and 4
seconds, the only change to the shipped expression) so the test sees it fire in
seconds; the shipped windows are unit-tested with promtool in tests/dashboards.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

from tests.collector_process import running_collector
from tests.server.helpers import body_of, make_facts
from tests.server.read.lan_fleet import device, discovery, host_domain, port
from tests.support import require_tool

from .conftest import create_token
from .prometheus_process import running_prometheus, wait_for

RULES = Path(__file__).resolve().parents[2] / "dashboards" / "prometheus"
ALERT = "CanhgacLanUnmanagedDeviceNew"
AGENCY = "so-lan"
DEADLINE = 60.0


@pytest.fixture
def collector(tmp_path: Path) -> Iterator[tuple[str, str]]:
    db_url = f"sqlite:///{tmp_path / 'canhgac.db'}"
    config = tmp_path / "collector.yaml"
    config.write_text("server:\n  metrics_refresh_seconds: 1\n")
    with running_collector("--db", db_url, "--config", str(config), log_dir=tmp_path) as served:
        yield served.url, db_url


@pytest.fixture
def prometheus(collector: tuple[str, str], tmp_path: Path) -> Iterator[str]:
    binary = require_tool("prometheus")
    shipped = yaml.safe_load((RULES / "alerts.yml").read_text())
    (rule,) = [r for g in shipped["groups"] for r in g["rules"] if r.get("alert") == ALERT]
    assert "[1d] offset 1h" in rule["expr"]
    rule["expr"] = rule["expr"].replace("[1d] offset 1h", "[20s] offset 4s")
    rules = tmp_path / "lan-alert.yml"
    rules.write_text(yaml.safe_dump({"groups": [{"name": "lan", "rules": [rule]}]}))
    with running_prometheus(binary, collector[0], tmp_path, [rules]) as url:
        yield url


def api(prometheus: str, path: str, **params: Any) -> Any:
    reply = requests.get(f"{prometheus}/api/v1/{path}", params=params, timeout=10)
    reply.raise_for_status()
    return reply.json()["data"]


def lan_counts(prometheus: str) -> dict[str, float]:
    result = api(prometheus, "query", query=f'canhgac_lan_devices{{agency="{AGENCY}"}}')["result"]
    return {s["metric"]["managed"]: float(s["value"][1]) for s in result}


def firing(prometheus: str) -> list[dict[str, Any]]:
    return [
        a
        for a in api(prometheus, "alerts")["alerts"]
        if a["labels"]["alertname"] == ALERT and a["state"] == "firing"
    ]


def report(url: str, token: str, seq: int, *devices: dict[str, Any]) -> None:
    host = host_domain("scan01", "10.0.0.1", "52:54:00:00:00:01")
    facts = make_facts(
        agent_id="agent-scan", seq=seq, hostname="scan01", host=host, discovery=discovery(*devices)
    )
    reply = requests.post(
        f"{url}/api/v1/reports",
        data=body_of(facts),
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )
    assert reply.status_code == 200, reply.text


@pytest.mark.integration
def test_unmanaged_devices_are_counted_and_a_new_one_alerts(
    collector: tuple[str, str], prometheus: str, tmp_path: Path
) -> None:
    url, db_url = collector
    scanner = create_token(db_url, AGENCY, tmp_path).read_text().strip()
    (tmp_path / "web").mkdir()
    web = create_token(db_url, AGENCY, tmp_path / "web").read_text().strip()
    facts = make_facts(
        agent_id="agent-web",
        hostname="web01",
        host=host_domain("web01", "10.0.0.2", "52:54:00:00:00:02"),
    )
    reply = requests.post(
        f"{url}/api/v1/reports", data=body_of(facts),
        headers={"Authorization": f"Bearer {web}"}, timeout=30,
    )  # fmt: skip
    assert reply.status_code == 200, reply.text
    web_seen = device("10.0.0.2", "52:54:00:00:00:02")
    nas = device("10.0.0.50", "00:11:32:aa:bb:cc", port(23, "telnet"))
    printer = device("10.0.0.60", "00:1b:a9:01:02:03", port(9100, "jetdirect"))
    report(url, scanner, 1, web_seen, nas, printer)

    wait_for(
        lambda: lan_counts(prometheus) == {"true": 1.0, "false": 2.0},
        "1 managed, 2 unmanaged",
        DEADLINE,
    )
    # The count holds for longer than the shortened window: nothing is new.
    time.sleep(24)
    assert firing(prometheus) == []

    camera = device("10.0.0.77", "00:40:8c:00:00:77", port(23, "telnet"), vendor="Axis")
    report(url, scanner, 2, web_seen, nas, printer, camera)
    wait_for(lambda: firing(prometheus), f"{ALERT} firing", DEADLINE)
    (alert,) = firing(prometheus)
    assert alert["labels"]["agency"] == AGENCY and alert["labels"]["severity"] == "warning"
    assert alert["annotations"]["summary_en"] == f"New unmanaged device on {AGENCY}'s LAN"
    assert alert["annotations"]["description_vi"].startswith(
        f"Mạng nội bộ của đơn vị {AGENCY} có 3 thiết bị chưa được quản lý"
    )
    assert lan_counts(prometheus) == {"true": 1.0, "false": 3.0}
