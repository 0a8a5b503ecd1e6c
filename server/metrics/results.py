"""Each host's latest rule results in memory, and the per-agency counts over them.

`canhgac_rule_hosts` and `canhgac_framework_requirement_ratio` need every host's
per-rule status. A scrape never queries the database, so the host-state refresh
(`HostStateCache.refresh`) hands its snapshots to `ResultsIndex.update`, which reads
`rule_results` only for the hosts whose results changed (another `results_report_pk`,
or a re-evaluation stamped in `evaluated_at`) and moves the per-agency counts by the
difference. Memory stays small at tens of thousands of hosts: a host's statuses are
four bytes per rule (rule ids interned once), not a dict of strings.

Hosts of a known security level (cấp độ, from the scopes' `security-level-<N>`
groups) are counted a second time per (agency, level), so a requirement of some
levels only is judged over those hosts; with no level declared that second count is
empty and costs nothing. A changed scopes file re-levels every host (`set_scopes`).
"""

from __future__ import annotations

import threading
from array import array
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import TYPE_CHECKING, TypeVar

from rules.policy.frameworks import declares_levels, security_level
from rules.policy.scopes import Scopes, Subject
from rules.results import Status
from server.storage.database import Database
from server.storage.models import RuleResultRow
from server.storage.rule_results import in_effect

if TYPE_CHECKING:  # hoststate imports this module: annotations only
    from server.metrics.hoststate import HostSnapshot

STATUSES = tuple(Status)  # code n (1-based) is STATUSES[n - 1]; 0 is "no result"
_CODE = {status.value: index + 1 for index, status in enumerate(STATUSES)}
_WIDTH = 8  # slots per rule: status codes 1..5 fit
_HOSTS_PER_LOAD = 2000
_BATCH = 500  # report ids per IN (...) query: well under every database's limits

K = TypeVar("K", str, tuple[str, int])  # a count table's key: agency, (agency, level)
ResultsKey = tuple[int | None, datetime | None]  # (results_report_pk, evaluated_at)
Row = tuple[str, str, str]  # rule_id, severity, status
Loader = Callable[[Database, Sequence[int]], Mapping[int, list[Row]]]


def key_of(snapshot: HostSnapshot) -> ResultsKey:
    # A re-evaluation rewrites the rows of the same report: evaluated_at tells.
    return (snapshot.results_report_pk, snapshot.evaluated_at)


@dataclass(frozen=True)
class HostResults:
    """One host's latest results: a slot per rule (4 bytes each), and the
    failing (rule_id, severity) pairs for the opt-in detail series."""

    key: ResultsKey
    agency_id: str
    label: str
    hostname: str
    agent_id: str
    level: int | None  # security level from the scopes; None: unknown
    slots: array[int]  # rule index * _WIDTH + status code, one per rule with a result
    failing: tuple[tuple[str, str], ...]


def load_results(database: Database, report_pks: Sequence[int]) -> dict[int, list[Row]]:
    """The (rule_id, severity, status) rows of these reports; items and errors unread."""
    rows: dict[int, list[Row]] = {pk: [] for pk in report_pks}
    with database.session() as session:
        for start in range(0, len(report_pks), _BATCH):
            batch = report_pks[start : start + _BATCH]
            query = in_effect(
                batch, RuleResultRow.rule_id, RuleResultRow.severity, RuleResultRow.status
            )
            for report_pk, rule_id, severity, status in session.execute(query):
                rows[report_pk].append((rule_id, severity, status))
    return rows


@dataclass(frozen=True)
class Aggregate:
    """A consistent copy for one scrape: counts[agency][(rule_id, status)] = hosts,
    and the same counts of the hosts of each known level: by_level[agency][level]."""

    version: int
    counts: Mapping[str, Mapping[tuple[str, Status], int]]
    by_level: Mapping[str, Mapping[int, Mapping[tuple[str, Status], int]]] = field(
        default_factory=dict
    )


class ResultsIndex:
    """agent_id -> HostResults, with per-agency counts kept by difference.

    One writer (the refresh, under its own lock) and any number of scrapes.
    """

    def __init__(self, loader: Loader = load_results) -> None:
        self._loader = loader
        self._lock = threading.Lock()
        self._rule_index: dict[str, int] = {}
        self._rule_ids: list[str] = []
        self._hosts: dict[str, HostResults] = {}
        # Per agency, hosts by slot = rule index * _WIDTH + status code: a flat list
        # moved by one addition per result, and no dict lookups.
        self._counts: dict[str, list[int]] = {}
        self._level_counts: dict[tuple[str, int], list[int]] = {}
        self._scopes: Scopes | None = None  # the security levels' source
        self._seen: dict[str, HostSnapshot] = {}  # the snapshots of the last update
        self._pairs: dict[tuple[str, str], tuple[str, str]] = {}
        self._version = 0

    def update(self, database: Database, snapshots: Iterable[HostSnapshot]) -> None:
        with self._lock:
            current = dict(self._hosts)
        seen = self._seen
        wanted: dict[str, HostSnapshot] = {}
        stale: list[HostSnapshot] = []
        moved: list[HostSnapshot] = []
        for snapshot in snapshots:
            agent_id = snapshot.agent_id
            wanted[agent_id] = snapshot
            if seen.get(agent_id) is snapshot:
                continue  # the cache keeps an unchanged host's snapshot object
            known = current.get(agent_id)
            if known is None or known.key != key_of(snapshot):
                stale.append(snapshot)
            elif (known.agency_id, known.label, known.hostname) != (
                snapshot.agency_id,
                snapshot.label,
                snapshot.hostname,
            ):
                moved.append(snapshot)  # same results, other agency or name: no read
        # In batches of hosts: the first refresh of a large fleet would otherwise hold
        # every host's rows at once (5 million tuples at 50,000 hosts x 100 rules).
        for start in range(0, len(stale), _HOSTS_PER_LOAD):
            batch = stale[start : start + _HOSTS_PER_LOAD]
            pks = sorted({s.results_report_pk for s in batch if s.results_report_pk is not None})
            rows = self._loader(database, pks) if pks else {}  # outside the lock: I/O
            with self._lock:
                for snapshot in batch:
                    pk = snapshot.results_report_pk
                    fresh = self._build(snapshot, rows.get(pk, []) if pk is not None else [])
                    self._replace(snapshot.agent_id, fresh)
        with self._lock:
            gone = [agent_id for agent_id in self._hosts if agent_id not in wanted]
            for agent_id in gone:
                self._apply(self._hosts.pop(agent_id), -1)
            for snapshot in moved:
                known = self._hosts[snapshot.agent_id]
                self._replace(
                    snapshot.agent_id,
                    replace(
                        known,
                        agency_id=snapshot.agency_id,
                        label=snapshot.label,
                        hostname=snapshot.hostname,
                        level=self._level(snapshot.agency_id, snapshot.hostname, known.agent_id),
                    ),
                )
            if gone or stale or moved:
                self._version += 1
        self._seen = wanted

    def _build(self, snapshot: HostSnapshot, rows: list[Row]) -> HostResults:
        slots: dict[int, int] = {}  # rule index -> slot (one status per rule)
        failing = []
        for rule_id, severity, status in rows:
            code = _CODE.get(status)
            if code is None:
                continue  # a status this collector does not know is not counted as any
            index = self._rule_index.get(rule_id)
            if index is None:
                index = self._rule_index[rule_id] = len(self._rule_ids)
                self._rule_ids.append(rule_id)
            slots[index] = index * _WIDTH + code
            if status == Status.FAIL.value:
                pair = (rule_id, severity)
                failing.append(self._pairs.setdefault(pair, pair))  # one object per pair
        return HostResults(
            key_of(snapshot),
            snapshot.agency_id,
            snapshot.label,
            snapshot.hostname,
            snapshot.agent_id,
            self._level(snapshot.agency_id, snapshot.hostname, snapshot.agent_id),
            array("I", sorted(slots.values())),
            tuple(sorted(failing)),
        )

    def _level(self, agency_id: str, hostname: str, agent_id: str) -> int | None:
        if self._scopes is None:
            return None
        return security_level(self._scopes, Subject(agency_id, hostname, agent_id))

    def set_scopes(self, scopes: Scopes | None) -> None:
        """Judge levels by `scopes` from now on (the policy's, after each reload): every
        host whose level changed is moved between the per-level counts."""
        chosen = scopes if scopes is not None and declares_levels(scopes) else None
        with self._lock:
            if chosen is self._scopes:
                return
            self._scopes = chosen
            changed = False
            for agent_id, host in list(self._hosts.items()):
                level = self._level(host.agency_id, host.hostname, host.agent_id)
                if level != host.level:
                    self._replace(agent_id, replace(host, level=level))
                    changed = True
            if changed:
                self._version += 1

    def _replace(self, agent_id: str, fresh: HostResults) -> None:
        old = self._hosts.get(agent_id)
        if old is not None:
            self._apply(old, -1)
        self._hosts[agent_id] = fresh
        self._apply(fresh, +1)

    def _apply(self, host: HostResults, sign: int) -> None:
        self._move(self._counts, host.agency_id, host, sign)
        if host.level is not None:
            self._move(self._level_counts, (host.agency_id, host.level), host, sign)

    def _move(self, table: dict[K, list[int]], key: K, host: HostResults, sign: int) -> None:
        counts = table.get(key)
        size = len(self._rule_ids) * _WIDTH
        if counts is None:
            counts = table[key] = [0] * size
        elif len(counts) < size:
            counts.extend([0] * (size - len(counts)))  # rules first seen since
        for slot in host.slots:
            counts[slot] += sign
        if sign < 0 and not any(counts):
            del table[key]

    @property
    def version(self) -> int:
        return self._version

    def aggregate(self) -> Aggregate:
        with self._lock:
            ids = self._rule_ids

            def named(slots: list[int]) -> dict[tuple[str, Status], int]:
                return {
                    (ids[slot // _WIDTH], STATUSES[slot % _WIDTH - 1]): n
                    for slot, n in enumerate(slots)
                    if n
                }

            counts = {agency: named(slots) for agency, slots in self._counts.items()}
            by_level: dict[str, dict[int, dict[tuple[str, Status], int]]] = {}
            for (agency, level), slots in self._level_counts.items():
                by_level.setdefault(agency, {})[level] = named(slots)
            return Aggregate(self._version, counts, by_level)

    def failing(self) -> list[HostResults]:
        """Hosts with at least one failing rule, by (agency, host label)."""
        with self._lock:
            hosts = [host for host in self._hosts.values() if host.failing]
        return sorted(hosts, key=lambda h: (h.agency_id, h.label))
