"""In-memory host state for /metrics: a scrape reads memory, never the database.

Every replica keeps its own `HostStateCache`: loaded from the database at startup,
updated right after each of its own ingest commits, and refreshed from the database
periodically, so replicas sharing one database converge within one refresh period.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from types import MappingProxyType

from sqlalchemy import or_, select

from rules.language.model import Severity
from server.clock import Clock, utc_now
from server.metrics.certificates import CertificateIndex
from server.metrics.lan import LanIndex
from server.metrics.results import ResultsIndex
from server.storage.database import Database
from server.storage.models import Host


@dataclass(frozen=True)
class HostSnapshot:
    """What the metrics need about one host, as of its newest report (by seq)."""

    agent_id: str
    agency_id: str
    hostname: str
    label: str  # the stable `host` label (server.storage.report_store.free_label)
    os_pretty_name: str | None
    agent_version: str
    last_seq: int
    last_collected_at: datetime
    last_received_at: datetime
    score_ratio: float | None
    error_count: int
    failing: Mapping[Severity, int]
    # Posture (server.metrics.summary); None is "unknown" and exports no series.
    score_weight: float | None = None
    updates_security: int | None = None
    updates_other: int | None = None
    update_oldest_pending_at: datetime | None = None
    reboot_required: bool | None = None
    cert_earliest_expiry_at: datetime | None = None
    exposed_services: int | None = None
    spool_dropped_reports: int = 0
    # Which stored results are the host's latest (server.metrics.results reads them).
    results_report_pk: int | None = None
    evaluated_at: datetime | None = None


def snapshot_of(host: Host) -> HostSnapshot:
    return HostSnapshot(
        agent_id=host.agent_id,
        agency_id=host.agency_id,
        hostname=host.hostname,
        label=host.label,
        os_pretty_name=host.os_pretty_name,
        agent_version=host.agent_version,
        last_seq=host.last_seq,
        last_collected_at=host.last_collected_at,
        last_received_at=host.last_received_at,
        score_ratio=host.score_ratio,
        error_count=host.error_count,
        failing=MappingProxyType(
            {
                Severity.CRITICAL: host.failing_critical,
                Severity.HIGH: host.failing_high,
                Severity.MEDIUM: host.failing_medium,
                Severity.LOW: host.failing_low,
                Severity.INFO: host.failing_info,
            }
        ),
        score_weight=host.score_weight,
        updates_security=host.updates_security,
        updates_other=host.updates_other,
        update_oldest_pending_at=host.update_oldest_pending_at,
        reboot_required=host.reboot_required,
        cert_earliest_expiry_at=host.cert_earliest_expiry_at,
        exposed_services=host.exposed_services,
        spool_dropped_reports=host.spool_dropped_reports or 0,
        results_report_pk=host.results_report_pk,
        evaluated_at=host.evaluated_at,
    )


def load_snapshots(database: Database) -> list[HostSnapshot]:
    with database.session() as session:
        return [snapshot_of(host) for host in session.scalars(select(Host))]


@dataclass(frozen=True)
class Changes:
    """What changed since a moment: the hosts touched, and every host id (for removals)."""

    changed: list[HostSnapshot]
    agent_ids: frozenset[str]


def load_changes(database: Database, since: datetime) -> Changes:
    """Hosts that received a report or were re-evaluated since `since` (both stamp a
    column: `last_received_at` at ingest, `evaluated_at` at ingest and re-evaluation)."""
    with database.session() as session:
        changed = [
            snapshot_of(host)
            for host in session.scalars(
                select(Host).where(or_(Host.last_received_at >= since, Host.evaluated_at >= since))
            )
        ]
        ids = frozenset(session.scalars(select(Host.agent_id)))
    return Changes(changed, ids)


def _order(snapshot: HostSnapshot) -> tuple[datetime, int]:
    # collected_at first: a restarted seq counter (new seq_epoch) has a lower seq.
    return (snapshot.last_collected_at, snapshot.last_seq)


class HostStateCache:
    """Thread-safe map agent_id -> HostSnapshot; the newer observation always wins."""

    def __init__(
        self,
        loader: Callable[[Database], list[HostSnapshot]] = load_snapshots,
        changes: Callable[[Database, datetime], Changes] | None = load_changes,
        *,
        full_every: int = 20,
        margin: timedelta = timedelta(seconds=120),
        clock: Clock = utc_now,
        results: ResultsIndex | None = None,
        lan: LanIndex | None = None,
    ) -> None:
        # Each host's latest rule results, brought up to date by every refresh.
        self.results = results if results is not None else ResultsIndex()
        # Every host's certificates: only when the opt-in detail is on (track_certificates).
        self.certificates: CertificateIndex | None = None
        # Every agency's LAN devices (canhgac_lan_devices), from the hosts' latest facts.
        self.lan = lan if lan is not None else LanIndex()
        # How a refresh reads the database (seams for tests): `loader` reads every
        # host; `changes` only the hosts stamped since the previous refresh began,
        # minus `margin` (transactions still open then, replicas' clock skew). Every
        # `full_every`-th refresh reads everything, whatever a stamp missed.
        self._loader = loader
        self._changes = changes
        self._full_every = full_every
        self._margin = margin
        self._clock = clock
        self._refreshes = 0
        self._mark: datetime | None = None  # when the previous refresh began
        self._lock = threading.Lock()
        self._refresh_lock = threading.Lock()
        self._hosts: dict[str, HostSnapshot] = {}
        # Snapshots put while a refresh reads the database: that read may predate them.
        self._during_refresh: dict[str, HostSnapshot] | None = None
        self._refreshed_at: float | None = None  # time.time() of the last completed refresh

    @property
    def refreshed_at(self) -> float | None:
        """Unix time of the last completed refresh from the database (None: never)."""
        return self._refreshed_at

    def track_certificates(self) -> CertificateIndex:
        """Keep every host's certificates from the next refresh on (opt-in detail)."""
        if self.certificates is None:
            self.certificates = CertificateIndex()
        return self.certificates

    def put(self, snapshot: HostSnapshot) -> None:
        with self._lock:
            current = self._hosts.get(snapshot.agent_id)
            if current is None or _order(snapshot) >= _order(current):
                self._hosts[snapshot.agent_id] = snapshot
            if self._during_refresh is not None:
                self._during_refresh[snapshot.agent_id] = snapshot

    def snapshots(self) -> list[HostSnapshot]:
        with self._lock:
            return list(self._hosts.values())

    def refresh(self, database: Database) -> None:
        """Bring the content up to the database's, keeping puts newer than the read:
        the hosts changed since the previous refresh, or everything every
        `full_every` refreshes (and the first time)."""
        with self._refresh_lock:
            started = self._clock()
            incremental = (
                self._changes is not None
                and self._mark is not None
                and self._refreshes % self._full_every != 0
            )
            with self._lock:
                self._during_refresh = {}
            try:
                if incremental:
                    assert self._changes is not None and self._mark is not None
                    loaded = self._merge(self._changes(database, self._mark - self._margin))
                else:
                    loaded = self._keep_unchanged(self._loader(database))
            finally:
                with self._lock:
                    recent, self._during_refresh = self._during_refresh or {}, None
            self._refreshes += 1
            self._mark = started
            with self._lock:
                for agent_id, snapshot in recent.items():
                    stored = loaded.get(agent_id)
                    if stored is None or _order(snapshot) > _order(stored):
                        loaded[agent_id] = snapshot
                self._hosts = loaded
            # Still under the refresh lock (one writer); reads only changed hosts' rows.
            self.results.update(database, loaded.values())
            if self.certificates is not None:
                self.certificates.update(database, loaded.values())
            self.lan.update(database, loaded.values())
            with self._lock:
                self._refreshed_at = time.time()

    def _keep_unchanged(self, loaded: list[HostSnapshot]) -> dict[str, HostSnapshot]:
        """The loaded snapshots, reusing the cached object where equal: the exporter
        keeps a host's rendered lines while its snapshot is the same object."""
        with self._lock:
            current = dict(self._hosts)
        kept = {}
        for snapshot in loaded:
            known = current.get(snapshot.agent_id)
            kept[snapshot.agent_id] = known if known == snapshot else snapshot
        return kept

    def _merge(self, changes: Changes) -> dict[str, HostSnapshot]:
        with self._lock:
            merged = {k: v for k, v in self._hosts.items() if k in changes.agent_ids}
        for snapshot in changes.changed:
            current = merged.get(snapshot.agent_id)
            # `>=`: a re-evaluation changes the score, not the report's order.
            if current is None or (_order(snapshot) >= _order(current) and current != snapshot):
                merged[snapshot.agent_id] = snapshot
        return merged
