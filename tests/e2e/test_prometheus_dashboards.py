"""Every dashboard panel and every recording rule returns data from a real Prometheus.

Debian's `prometheus` scrapes a real `canhgac-server serve` holding a fleet of three
agencies: one real agent run on this machine (which then stops reporting: the stale
host) and simulated hosts whose facts documents are uploaded through the API every
second, each with its own token, as agents would. The recording and alert rules of
dashboards/prometheus are loaded as shipped. Then each panel query of
dashboards/grafana (variables substituted) and each recording rule is evaluated
through Prometheus's HTTP API and must return data; each template variable query
must return values; and the alerts for the seeded problems (a certificate expiring
in 3 days, a stale host) must be firing.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

from tests.collector_process import running_collector
from tests.server.helpers import body_of, iso, make_facts, telnet
from tests.support import require_tool

from .conftest import create_token, run_agent_once
from .prometheus_process import running_prometheus, wait_for

ROOT = Path(__file__).resolve().parents[2]
GRAFANA = ROOT / "dashboards" / "grafana"
RULES = ROOT / "dashboards" / "prometheus"
AGENCIES = ("so-a", "so-b", "so-c")
FOCUS_AGENCY, FOCUS_HOST = "so-a", "web-so-a-1"  # the host the host dashboard shows
DEADLINE = 120.0


def host_facts(agency: str, index: int, seq: int, now: datetime) -> dict[str, Any]:
    """A host with posture: updates pending, a reboot, a certificate, telnet on index 1."""
    first_seen = now - timedelta(days=20)
    days_left = 3 if index == 1 else 60
    # so-a's second host sweeps its LAN and sees one device nobody enrolled (no open
    # port: no LAN rule fails), for the unmanaged devices panel.
    sweep: dict[str, Any] = {}
    if (agency, index) == (FOCUS_AGENCY, 2):
        device = {"ip": "192.168.50.60", "mac": "00:1b:a9:01:02:03", "vendor": "Brother"}
        sweep["discovery"] = {
            "subnets": ["192.168.50.0/24"],
            "ports_probed": [23, 445],
            "port_method": "syn",
            "hosts_swept": 254,
            "device_count": 1,
            "open_port_count": 0,
            "notes": [],
            "devices": [device | {"found_by": "arp", "ports": []}],
        }
    return make_facts(
        **sweep,
        agent_id=f"agent-{agency}-{index}",
        seq=seq,
        hostname=f"web-{agency}-{index}",
        listening=[telnet()] if index == 1 else [telnet("127.0.0.1")],
        updates={
            "manager": "apt",
            "pending": [
                {
                    "name": "openssl",
                    "current_version": "3.0.1",
                    "candidate_version": "3.0.2",
                    "architecture": "amd64",
                    "security": True,
                    "first_seen_at": iso(first_seen),
                    "pending_days": 20,
                }
            ],
            "pending_count": 3,
            "security_count": 1,
            "running_kernel": "6.1.0-18-amd64",
            "reboot_required": index == 1,
        },
        certificates=[
            {
                "location": "/etc/ssl/web.pem#0",
                "source": "file",
                "path": "/etc/ssl/web.pem",
                "chain_position": 0,
                "subject": f"CN=web-{agency}-{index}",
                "issuer": "CN=ca",
                "serial": "01",
                "not_before": iso(now - timedelta(days=300)),
                "not_after": iso(now + timedelta(days=days_left)),
                "days_left": days_left,
                "key_type": "RSA",
                "signature_algorithm": "sha256WithRSAEncryption",
                "self_signed": False,
                "is_ca": False,
                "fingerprint_sha256": "b" * 64,
            }
        ],
    )


class Fleet:
    """Simulated hosts re-reporting every second (so only the real agent goes stale)."""

    def __init__(self, url: str, tokens: dict[tuple[str, int], str]) -> None:
        self._url = url
        self._tokens = tokens
        self._stop = threading.Event()
        self._seq = 0
        self.failures: list[str] = []
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def report_all(self) -> None:
        self._seq += 1
        now = datetime.now(UTC)
        for (agency, index), token in self._tokens.items():
            reply = requests.post(
                f"{self._url}/api/v1/reports",
                data=body_of(host_facts(agency, index, self._seq, now)),
                headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
                timeout=30,
            )
            if reply.status_code != 200:
                self.failures.append(reply.text)

    def _loop(self) -> None:
        while not self._stop.wait(1.0):
            self.report_all()

    def __enter__(self) -> Fleet:
        self.report_all()
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=60)


@pytest.fixture
def collector(tmp_path: Path) -> Iterator[tuple[str, str]]:
    """The collector with a short report interval: a host is stale after 3 s of silence."""
    db_url = f"sqlite:///{tmp_path / 'canhgac.db'}"
    config = tmp_path / "collector.yaml"
    config.write_text(
        "server:\n  report_interval_seconds: 1\n  stale_after_intervals: 3\n"
        "  metrics_refresh_seconds: 1\n"
        # The opt-in detail on, with a cap below the fleet's failing pairs: the
        # exposition linted below then holds the capped family and its drop counter.
        "  metrics_rule_failing_max_series: 3\n"
        "  metrics_cert_max_series: 100\n"
    )
    with running_collector("--db", db_url, "--config", str(config), log_dir=tmp_path) as served:
        yield served.url, db_url


@pytest.fixture
def prometheus(collector: tuple[str, str], tmp_path: Path) -> Iterator[str]:
    binary = require_tool("prometheus")
    rules = tmp_path / "rules"
    rules.mkdir()
    for name in ("recording.yml", "alerts.yml"):
        shutil.copy(RULES / name, rules / name)  # loaded as shipped
    rule_files = [rules / "recording.yml", rules / "alerts.yml"]
    with running_prometheus(binary, collector[0], tmp_path, rule_files) as url:
        yield url


def api(prometheus: str, path: str, **params: Any) -> Any:
    reply = requests.get(f"{prometheus}/api/v1/{path}", params=params, timeout=10)
    reply.raise_for_status()
    return reply.json()["data"]


def substitute(expr: str) -> str:
    return expr.replace("$agency", FOCUS_AGENCY).replace("$host", FOCUS_HOST)


def panel_queries() -> list[tuple[str, str, str]]:
    found = []
    for path in sorted(GRAFANA.glob("*.json")):
        for panel in json.loads(path.read_text("utf-8"))["panels"]:
            for target in panel["targets"]:
                found.append((path.name, panel["title"], substitute(target["expr"])))
    return found


def variable_queries() -> list[tuple[str, str, str]]:
    found = []
    for path in sorted(GRAFANA.glob("*.json")):
        for variable in json.loads(path.read_text("utf-8"))["templating"]["list"]:
            if variable["type"] == "query":
                found.append((path.name, variable["name"], substitute(variable["definition"])))
    return found


def recording_rules() -> list[tuple[str, str]]:
    document = yaml.safe_load((RULES / "recording.yml").read_text())
    return [(r["record"], r["expr"]) for g in document["groups"] for r in g["rules"]]


def firing(prometheus: str) -> set[tuple[str, str]]:
    return {
        (alert["labels"]["alertname"], alert["labels"].get("host", ""))
        for alert in api(prometheus, "alerts")["alerts"]
        if alert["state"] == "firing"
    }


@pytest.mark.integration
def test_every_panel_and_rule_returns_data(
    risky_listener: object, collector: tuple[str, str], prometheus: str, tmp_path: Path
) -> None:
    url, db_url = collector
    tokens: dict[tuple[str, int], str] = {}
    for agency in AGENCIES:
        for index in (1, 2):
            directory = tmp_path / f"{agency}-{index}"
            directory.mkdir()
            token_file = create_token(db_url, agency, directory)
            tokens[(agency, index)] = token_file.read_text().strip()
    (tmp_path / "real").mkdir()
    real_token = create_token(db_url, FOCUS_AGENCY, tmp_path / "real")
    run_agent_once(url, real_token, tmp_path / "agent-state")  # then silent: stale

    with Fleet(url, tokens) as fleet:
        wait_for(
            lambda: (
                {("CanhgacAgentStale", ""), ("CanhgacCertificateExpiringCritical", "")}
                <= {(name, "") for name, _ in firing(prometheus)}
            ),
            "the seeded alerts firing",
            DEADLINE,
            step=1.0,
        )
        # Range panels need a few points; rates need two scrapes: a little history.
        time.sleep(3)
        empty = []
        for dashboard, title, expr in panel_queries():
            if not api(prometheus, "query", query=expr)["result"]:
                empty.append(f"{dashboard} / {title}: {expr}")
        for record, expr in recording_rules():
            if not api(prometheus, "query", query=record)["result"]:
                empty.append(f"recording rule {record}: {expr}")
        for dashboard, name, definition in variable_queries():
            match = re.fullmatch(r"label_values\((.*), *(\w+)\)", definition)
            assert match, f"{dashboard} ${name}: unsupported variable query {definition}"
            values = api(prometheus, f"label/{match[2]}/values", **{"match[]": match[1]})
            if not values:
                empty.append(f"{dashboard} variable ${name}: {definition}")
        assert not empty, "queries returning no data:\n" + "\n".join(empty)
        alerts = firing(prometheus)
        assert ("CanhgacCertificateExpiringCritical", FOCUS_HOST) in alerts
        assert ("CanhgacCriticalRuleFailing", FOCUS_HOST) in alerts  # telnet exposed
        assert ("CanhgacSecurityUpdatesPendingTooLong", FOCUS_HOST) in alerts  # 20 days
        assert ("CanhgacCertificateExpiringSoon", FOCUS_HOST) not in alerts  # 3 days: critical
        stale = {host for name, host in alerts if name == "CanhgacAgentStale"}
        assert len(stale) == 1 and not stale & {f"web-{a}-{i}" for a, i in tokens}
        # The exposition with every family present passes promtool's linter.
        exposition = requests.get(f"{url}/metrics", timeout=10).text
        assert "canhgac_host_cert_earliest_expiry_timestamp_seconds{" in exposition
        for family in (
            "canhgac_rule_hosts{",
            "canhgac_framework_requirement_ratio{",
            "canhgac_rule_failing{",
            'canhgac_cert_not_after_timestamp_seconds{agency="so-a",host="web-so-a-1",',
        ):
            assert family in exposition, family
        assert exposition.count("\ncanhgac_rule_failing{") == 3
        dropped = api(
            prometheus,
            "query",
            query='canhgac_metrics_series_dropped_total{family="canhgac_rule_failing"}',
        )["result"]
        assert dropped and float(dropped[0]["value"][1]) > 0
        # Severity legends: every series of the agency panel carries a Vietnamese word.
        words = {"nghiêm trọng", "cao", "trung bình", "thấp", "thông tin"}
        for dashboard, _title, expr in panel_queries():
            if dashboard == "agency.json" and '"muc_do"' in expr:
                series = api(prometheus, "query", query=expr)["result"]
                assert series and all(s["metric"].get("muc_do") in words for s in series)
        lint = subprocess.run(
            [require_tool("promtool"), "check", "metrics"],
            input=exposition,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert lint.returncode == 0, lint.stdout + lint.stderr
    assert not fleet.failures, fleet.failures[:3]
