"""LAN-UNMANAGED-DEVICE in a real `canhgac-server serve` on loopback, SQLite and PostgreSQL.

Two hosts of one agency report real-shaped facts over HTTP: a web server and a
discovering host whose sweep sees the web server, a NAS and a printer seen without its
MAC. The discoverer's findings open for the NAS (by MAC) and the printer (by IP), never
for the web server; then the NAS's host enrols and reports, and the collector's own
background loop (policy check every half second) re-evaluates the discoverer: the NAS's
finding resolves without the discoverer reporting again, the printer's stays open, and
the API's LAN view agrees.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

from tests.collector_process import running_collector
from tests.server.helpers import body_of, make_facts
from tests.server.read.lan_fleet import device, discovery, host_domain, port

from .conftest import BIN, create_token, run

PACK = Path(__file__).resolve().parents[2] / "rules" / "packs" / "lan-discovery.yaml"
AGENCY = "so-lan"
RULE = "LAN-UNMANAGED-DEVICE"
NAS_MAC = "00:11:32:aa:bb:cc"
DEADLINE = 30.0


@pytest.fixture
def served(db_url: str, tmp_path: Path) -> Iterator[tuple[str, Path]]:
    config = tmp_path / "collector.yaml"
    server = {"db_url": db_url, "rules": [str(PACK)], "policy_check_seconds": 0.5}
    config.write_text(yaml.safe_dump({"server": server}), "utf-8")
    with running_collector("--config", str(config), log_dir=tmp_path) as collector:
        yield collector.url, config


def post(url: str, token: str, agent_id: str, seq: int, host: dict[str, Any], **facts: Any) -> None:
    document = make_facts(agent_id=agent_id, seq=seq, hostname=host["hostname"], host=host, **facts)
    reply = requests.post(
        f"{url}/api/v1/reports",
        data=body_of(document),
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )
    assert reply.status_code == 200, reply.text


def get(url: str, viewer: str, path: str, **params: Any) -> Any:
    reply = requests.get(
        f"{url}/api/v1{path}",
        params=params,
        headers={"Authorization": f"Bearer {viewer}"},
        timeout=30,
    )
    assert reply.status_code == 200, reply.text
    return reply.json()


def findings(url: str, viewer: str) -> dict[str, str]:
    page = get(url, viewer, "/findings", rule=RULE, agent_id="agent-scan", limit=100)
    return {f["item_key"]: f["status"] for f in page["items"]}


def wait_for(check: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + DEADLINE
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {DEADLINE:g} s: {what}")
        time.sleep(0.2)


def test_unmanaged_device_finding_opens_and_resolves_when_its_host_enrols(
    served: tuple[str, Path], db_url: str, tmp_path: Path
) -> None:
    url, config = served
    tokens = {}
    for agent in ("scan", "web", "nas"):
        (tmp_path / agent).mkdir()
        tokens[agent] = create_token(db_url, AGENCY, tmp_path / agent).read_text().strip()
    viewer = (
        run(
            str(BIN / "canhgac-server"),
            "api-token",
            "create",
            "--name",
            "e2e",
            "--config",
            str(config),
        )
        .stdout.strip()
        .splitlines()[-1]
    )

    post(url, tokens["web"], "agent-web", 1, host_domain("web01", "10.0.0.2", "52:54:00:00:00:02"))
    sweep = discovery(
        device("10.0.0.2", "52:54:00:00:00:02"),
        device("10.0.0.50", NAS_MAC, port(80, "http"), vendor="Synology"),
        device("10.0.0.60", None, port(9100, "jetdirect", "connect"), found_by="connect"),
        complete=True,
    )
    scanner = host_domain("scan01", "10.0.0.1", "52:54:00:00:00:01")
    post(url, tokens["scan"], "agent-scan", 1, scanner, discovery=sweep)
    assert findings(url, viewer) == {NAS_MAC: "open", "10.0.0.60": "open"}
    detail = get(url, viewer, "/hosts/agent-scan")
    # No risky port anywhere: only the unmanaged devices lower the score now.
    assert detail["score"] < 1.0

    post(url, tokens["nas"], "agent-nas", 1, host_domain("nas01", "10.0.0.50", NAS_MAC))
    wait_for(
        lambda: findings(url, viewer) == {NAS_MAC: "resolved", "10.0.0.60": "open"},
        "the NAS's finding resolved by the background re-evaluation",
    )
    lan = get(url, viewer, "/lan/devices", agency=AGENCY, managed="false")
    assert [d["ips"] for d in lan["items"]] == [["10.0.0.60"]]
