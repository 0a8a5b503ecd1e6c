"""The in-memory host state: newer seq wins, refresh converges on the database."""

from __future__ import annotations

import threading
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from rules.language.model import Severity
from server.ingest.service import IngestService
from server.metrics.hoststate import (
    Changes,
    HostSnapshot,
    HostStateCache,
    load_changes,
    load_snapshots,
)
from server.storage.database import Database
from tests.server.helpers import body_of, make_facts, new_token, telnet

SNAPSHOT = HostSnapshot(
    agent_id="agent-1",
    agency_id="so-test",
    hostname="web01",
    label="web01",
    os_pretty_name="Debian 12",
    agent_version="0.1.0",
    last_seq=5,
    last_collected_at=datetime(2026, 11, 27, tzinfo=UTC),
    last_received_at=datetime(2026, 11, 27, tzinfo=UTC),
    score_ratio=0.5,
    error_count=0,
    failing=dict.fromkeys(Severity, 0),
)


def test_newer_seq_wins_and_older_is_ignored() -> None:
    cache = HostStateCache()
    cache.put(SNAPSHOT)
    cache.put(replace(SNAPSHOT, last_seq=4, hostname="stale"))
    assert [s.hostname for s in cache.snapshots()] == ["web01"]
    cache.put(replace(SNAPSHOT, last_seq=6, hostname="renamed"))
    assert [s.hostname for s in cache.snapshots()] == ["renamed"]


def ingest(service: IngestService, token: str, **facts: Any) -> None:
    credential = service.authenticate(token)
    service.ingest(credential, body_of(make_facts(**facts)), None)


def test_refresh_loads_what_another_replica_stored(
    service: IngestService, database: Database, token: str
) -> None:
    """`service` writes with its own cache; a second replica's cache sees it on refresh."""
    other_replica = HostStateCache()
    other_replica.refresh(database)
    assert other_replica.snapshots() == []
    ingest(service, token, seq=1, hostname="web01")
    other_replica.refresh(database)
    [snapshot] = other_replica.snapshots()
    assert (snapshot.agent_id, snapshot.hostname, snapshot.last_seq) == ("agent-1", "web01", 1)
    assert snapshot.last_received_at.tzinfo is UTC


def test_refresh_drops_hosts_gone_from_the_database(database: Database) -> None:
    cache = HostStateCache()
    cache.put(SNAPSHOT)
    cache.refresh(database)
    assert cache.snapshots() == []


def test_put_during_refresh_survives_an_older_read(database: Database) -> None:
    """An ingest commit landing while a refresh reads must not be overwritten by it."""
    read_started = threading.Event()
    finish_read = threading.Event()

    def slow_load(db: Database) -> list[HostSnapshot]:
        read_started.set()
        finish_read.wait(10)
        return [replace(SNAPSHOT, last_seq=1, hostname="from-db")]

    cache = HostStateCache(loader=slow_load)
    refresher = threading.Thread(target=cache.refresh, args=(database,))
    refresher.start()
    assert read_started.wait(10)
    cache.put(replace(SNAPSHOT, last_seq=2, hostname="just-ingested"))
    cache.put(replace(SNAPSHOT, agent_id="agent-2", hostname="new-host"))
    finish_read.set()
    refresher.join(10)
    hosts = {s.agent_id: s.hostname for s in cache.snapshots()}
    assert hosts == {"agent-1": "just-ingested", "agent-2": "new-host"}


def test_load_snapshots_reads_failing_counts(
    service: IngestService, database: Database, token: str
) -> None:
    ingest(service, token, listening=[telnet()])
    [snapshot] = load_snapshots(database)
    assert snapshot.failing[Severity.CRITICAL] == 1
    assert sum(snapshot.failing.values()) == 1


def test_incremental_refresh_reads_only_changed_hosts(
    service: IngestService, database: Database, token: str
) -> None:
    """After the first (full) refresh, a refresh reads the hosts stamped since the
    previous one began; unchanged hosts keep their snapshot object (and so their
    rendered lines in the exporter); every `full_every`-th refresh reads everything."""
    reads: list[int] = []

    def counting(db: Database, since: datetime) -> Changes:
        changes = load_changes(db, since)
        reads.append(len(changes.changed))
        return changes

    clock_now = [datetime.now(UTC) + timedelta(hours=1)]
    replica = HostStateCache(
        changes=counting, full_every=2, margin=timedelta(0), clock=lambda: clock_now[0]
    )
    ingest(service, token, agent_id="agent-1", seq=1, hostname="web01")
    second = new_token(database)
    ingest(service, second, agent_id="agent-2", seq=1, hostname="db01")
    replica.refresh(database)  # full
    assert reads == []
    before = {s.agent_id: s for s in replica.snapshots()}
    replica.refresh(database)  # incremental: nothing stamped after the mark (an hour ahead)
    assert reads == [0]
    after = {s.agent_id: s for s in replica.snapshots()}
    assert all(after[k] is before[k] for k in before)

    clock_now[0] = datetime.now(UTC) - timedelta(minutes=5)
    replica.refresh(database)  # full again (every 2nd), mark moves back 5 minutes
    assert reads == [0]
    assert all(s is before[s.agent_id] for s in replica.snapshots())  # equal: reused
    ingest(service, token, agent_id="agent-1", seq=2, hostname="web01-renamed")
    replica.refresh(database)  # incremental: both hosts were stamped within 5 minutes
    assert reads == [0, 2]
    hosts = {s.agent_id: s.hostname for s in replica.snapshots()}
    assert hosts == {"agent-1": "web01-renamed", "agent-2": "db01"}
