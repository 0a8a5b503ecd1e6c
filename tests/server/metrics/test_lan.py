"""`canhgac_lan_devices{agency,managed}` from the host-state refresh (SQLite and
PostgreSQL): counts per agency, only agencies that sweep, updated when a report
changes, re-read only for changed hosts, and linted by promtool."""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from datetime import timedelta

from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy.orm import Session

from server.ingest.service import IngestService
from server.metrics import lan as lan_metrics
from server.metrics.exporter import build_registry
from server.metrics.hoststate import HostStateCache
from server.metrics.lan import LanIndex
from server.read.lan import HostLan, load_host_lan
from server.storage.database import Database
from tests.server.helpers import new_token
from tests.server.read import lan_fleet
from tests.server.read.lan_fleet import T0, device, discovery, host_domain, port
from tests.support import require_tool


def lan_samples(cache: HostStateCache) -> dict[tuple[str, str], float]:
    exporter, _ = build_registry(cache, "test")
    text = exporter.render().decode()
    return {
        (s.labels["agency"], s.labels["managed"]): s.value
        for family in text_string_to_metric_families(text)
        if family.name == lan_metrics.LAN_DEVICES
        for s in family.samples
    }


def test_counts_per_agency_and_only_where_someone_sweeps(
    service: IngestService, database: Database
) -> None:
    tokens = lan_fleet.build(service, database)
    # so-c has a host but nobody sweeps there: unknown, so no series (never 0).
    lan_fleet.report(
        service,
        new_token(database, "so-c"),
        "agent-c",
        host_domain("c1", "10.9.0.1", "52:54:00:00:0c:01"),
    )
    cache = HostStateCache()
    cache.refresh(database)
    assert lan_samples(cache) == {
        ("so-a", "true"): 2,
        ("so-a", "false"): 2,
        ("so-b", "true"): 0,
        ("so-b", "false"): 1,
    }

    # A new unmanaged camera on so-b's LAN, in agent-b's next report.
    lan_fleet.report(
        service,
        tokens["agent-b"],
        "agent-b",
        host_domain("scan-b", "10.0.0.1", "52:54:00:00:0b:01"),
        seq=2,
        collected_at=T0 + timedelta(hours=1),
        discovery=discovery(
            device("10.0.0.50", lan_fleet.NAS_MAC, port(3306, "mysql")),
            device("10.0.0.77", "00:40:8c:00:00:77", port(23, "telnet"), vendor="Axis"),
        ),
    )
    cache.refresh(database)
    samples = lan_samples(cache)
    assert samples[("so-b", "false")] == 2 and samples[("so-a", "false")] == 2

    exporter, _ = build_registry(cache, "test")
    checked = subprocess.run(
        [require_tool("promtool"), "check", "metrics"],
        input=exporter.render(),
        capture_output=True,
        check=False,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_only_changed_hosts_are_read(service: IngestService, database: Database) -> None:
    tokens = lan_fleet.build(service, database)
    reads: list[list[str]] = []
    original = load_host_lan

    def counting(session: Session, agent_ids: Sequence[str]) -> list[HostLan]:
        reads.append(sorted(agent_ids))
        return original(session, agent_ids)

    # A spy, not a mock: the real read runs, the test only records which hosts it read.
    cache = HostStateCache(lan=LanIndex(reader=counting))
    cache.refresh(database)
    assert reads == [["agent-b", "agent-scan", "agent-scan2", "agent-web"]]
    cache.refresh(database)
    assert reads[1:] == []  # nothing changed: nothing read
    lan_fleet.report(
        service,
        tokens["agent-web"],
        "agent-web",
        host_domain("web01", "10.0.0.2", "52:54:00:00:00:02"),
        seq=2,
        collected_at=T0 + timedelta(hours=5),
    )
    cache.refresh(database)
    assert reads[1:] == [["agent-web"]]
