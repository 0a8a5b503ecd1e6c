"""`canhgac_lan_devices{agency,managed}`: devices on each agency's LAN, enrolled or not.

A scrape reads memory only: the host-state refresh calls `LanIndex.update`, which
re-reads the `host` and `discovery` domains of the hosts whose newest report changed
(`server.read.lan`), keeps each host's part, and merges per agency (one device per
MAC, then IP). Only agencies with at least one discovering host get series (both
`managed="true"` and `"false"`, zero included): an agency nobody sweeps has an
unknown count, never 0.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import datetime
from typing import TYPE_CHECKING

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy.orm import Session

from server.read.lan import HostLan, load_host_lan, merge_all
from server.storage.database import Database

if TYPE_CHECKING:  # hoststate imports this module: annotations only
    from server.metrics.hoststate import HostSnapshot

LAN_DEVICES = "canhgac_lan_devices"
_Key = tuple[str, str, int, datetime]  # agency, label, last_seq, last_collected_at
# Reads the given hosts' LAN parts from their newest reports.
LanReader = Callable[[Session, Sequence[str]], list[HostLan]]


def _key(snapshot: HostSnapshot) -> _Key:
    return (snapshot.agency_id, snapshot.label, snapshot.last_seq, snapshot.last_collected_at)


class LanIndex:
    """agent_id -> (report key, HostLan), and the per-agency counts; one writer.

    `reader` is how changed hosts are read (a seam: tests pass a spy around the real
    read to see which hosts a refresh re-reads).
    """

    def __init__(self, reader: LanReader = load_host_lan) -> None:
        self._reader = reader
        self._lock = threading.Lock()
        self._hosts: dict[str, tuple[_Key, HostLan]] = {}
        self._counts: dict[str, tuple[int, int]] = {}  # agency -> (managed, unmanaged)

    def update(self, database: Database, snapshots: Iterable[HostSnapshot]) -> None:
        wanted = {s.agent_id: _key(s) for s in snapshots}
        current = dict(self._hosts)  # only the refresh writes `_hosts`
        stale = [
            a for a, key in wanted.items() if (known := current.get(a)) is None or known[0] != key
        ]
        if not stale and wanted.keys() == current.keys():
            return  # nothing reported since the last refresh: the counts stand
        if stale:
            with database.session() as session:  # outside the lock: I/O
                loaded = {h.agent_id: h for h in self._reader(session, stale)}
        else:
            loaded = {}
        fresh = {a: current[a] for a in wanted if a in current and a not in stale}
        for agent_id in stale:
            if agent_id in loaded:
                fresh[agent_id] = (wanted[agent_id], loaded[agent_id])
        hosts = [lan for _, lan in fresh.values()]
        discovering = {h.agency for h in hosts if h.sightings is not None}
        counts: dict[str, tuple[int, int]] = {}
        for agency, devices in merge_all(h for h in hosts if h.agency in discovering).items():
            managed = sum(1 for d in devices if d.managed)
            counts[agency] = (managed, len(devices) - managed)
        with self._lock:
            self._hosts = fresh
            self._counts = counts

    def counts(self) -> dict[str, tuple[int, int]]:
        with self._lock:
            return dict(self._counts)


class LanCollector(Collector):
    """Renders the index at scrape time (labels escaped by prometheus_client)."""

    def __init__(self, index: LanIndex) -> None:
        self._index = index

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            LAN_DEVICES,
            "Devices discovered on the agency's LAN (merged by MAC, then IP), by whether "
            "they are enrolled hosts; only agencies with a discovering agent.",
            labels=["agency", "managed"],
        )
        for agency, (managed, unmanaged) in sorted(self._index.counts().items()):
            family.add_metric([agency, "true"], managed)
            family.add_metric([agency, "false"], unmanaged)
        yield family
