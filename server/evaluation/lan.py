"""The `lan_managed` domain: which of a discovering host's devices are enrolled hosts.

Rules are pure functions of one host's facts, but whether a device on the LAN is
managed is known only on the collector: its MAC, else one of its IP addresses, is an
interface of an enrolled host of the same agency. So, as `vulnerabilities` is added
from the feed store, evaluation adds this domain to the facts of a host whose report
carries `discovery`, for the LAN-UNMANAGED-DEVICE rule. The matching is the read
side's (`server.lanmatch.merge_agency`, the API, metrics and audit's), applied to this
host's own sightings against the addresses of every host of its agency: the others'
from their latest stored report, its own from the report being evaluated.

Never a silent pass: a failed sweep, one cut short by a cap, one that found no
device at all, or enrolled hosts that could not be read leave the domain out with an
`errors` entry naming why, so the rule is in `error` with that reason.

Freshness: the domain is computed at each evaluation and never carried
(`carry.key_function` evaluates keys it did not receive). A discovering host's
unchanged report is not evaluated again the same day, so a newly enrolled host is
caught by the daily re-evaluation or the discoverer's next changed report; sooner, in
this replica, when a host of an agency whose discovering hosts it has evaluated
reports an address that agency's last managed set lacked: that agency is queued and
`reeval.Reevaluator` re-evaluates its discovering hosts once the new address is
committed (`refresh_queue`).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select

from server.errors import DatabaseError
from server.lanmatch import HostLan, LanDevice, merge_agency, own_addresses, sightings_of
from server.storage.database import Database, open_database
from server.storage.fact_store import load_domains
from server.storage.models import Host

log = logging.getLogger(__name__)

DOMAIN = "lan_managed"
_BATCH = 500  # hosts per query: far below every database's parameter limit
# A queued agency whose new address never got committed (the report was refused or
# rolled back) is dropped after this long: the daily re-evaluation still covers it.
QUEUE_SECONDS = 600.0
# One engine per database URL in this process: policies are reloaded, engines are not.
_DATABASES: dict[str, Database] = {}
_DATABASES_LOCK = threading.Lock()


@dataclass(frozen=True)
class Queued:
    """An agency whose discovering hosts should be evaluated again."""

    agency: str
    addresses: frozenset[str]  # the new ones: done once the managed set holds them
    since: float  # time.monotonic()


def _database(url: str) -> Database:
    with _DATABASES_LOCK:
        database = _DATABASES.get(url)
        if database is None:
            database = _DATABASES[url] = open_database(url)
        return database


class ManagedLan:
    """Adds `lan_managed` at evaluation, reading the agency's hosts from `url`."""

    def __init__(self, url: str, database: Database | None = None) -> None:
        self._url = url
        # Given by tests; else opened on first use, so after `serve --workers` forks.
        self._database = database
        self._lock = threading.Lock()
        # agency -> every address (MACs and IPs) of its hosts as last loaded here
        self._known: dict[str, frozenset[str]] = {}
        # agency -> agent ids of the hosts whose reports carried `discovery`
        self._discovering: dict[str, set[str]] = {}
        self._queue: dict[str, Queued] = {}

    def enrich(self, facts: Mapping[str, Any], agency: str, agent_id: str) -> dict[str, Any]:
        """`facts` with `lan_managed`, or with an `errors` entry saying why not."""
        enriched = dict(facts)
        enriched.pop(DOMAIN, None)  # only ever the collector's own
        macs, ips = own_addresses(facts.get("host"))
        self._note_addresses(agency, agent_id, macs | ips)
        discovery = facts.get("discovery")
        if not isinstance(discovery, Mapping):
            reason = _agent_error(facts)
            if reason is not None:
                return _with_error(enriched, f"the discovery sweep failed: {reason}")
            return enriched  # the host does not sweep: the rule is not applicable
        with self._lock:
            self._discovering.setdefault(agency, set()).add(agent_id)
        problem = _sweep_problem(discovery)
        if problem is not None:
            return _with_error(enriched, problem)
        try:
            others = self._agency_hosts(agency, agent_id)
        except DatabaseError as e:
            # The detail (driver text, server address) goes to the log, not to viewers.
            log.warning("lan_managed for %r: enrolled hosts not read: %s", agent_id, e)
            return _with_error(
                enriched, "the agency's enrolled hosts could not be read (see the collector's log)"
            )
        now = datetime.now(UTC)  # only the sighting times use it; the rule does not
        sightings = sightings_of(discovery, agent_id, agent_id, now)
        mine = HostLan(agent_id, agency, agent_id, macs, ips, sightings)
        hosts = [*others, mine]
        with self._lock:
            self._known[agency] = frozenset(
                address for h in hosts for address in (*h.own_macs, *h.own_ips)
            )
        devices = merge_agency(agency, hosts)
        if not devices:  # entries without an address: nothing judged is no pass
            return _with_error(enriched, "the sweep reported no device with an address")
        enriched[DOMAIN] = domain_of(devices, len(hosts))
        return enriched

    def _note_addresses(self, agency: str, agent_id: str, addresses: frozenset[str]) -> None:
        """Queue the agency when a host shows addresses its managed set lacks."""
        with self._lock:
            known = self._known.get(agency)
            if known is None or not self._discovering.get(agency) or addresses <= known:
                return
            if self._discovering[agency] == {agent_id}:
                return  # the discovering host itself: judged with them right now
            queued = self._queue.get(agency)
            waiting = queued.addresses if queued is not None else frozenset()
            self._queue[agency] = Queued(agency, waiting | (addresses - known), time.monotonic())

    def queued(self) -> bool:
        with self._lock:
            return bool(self._queue)

    def refresh_queue(self) -> dict[str, set[str]]:
        """agency -> its discovering hosts' agent ids, for the agencies queued; entries
        older than QUEUE_SECONDS are dropped. The caller re-evaluates those hosts and
        then calls `settle`."""
        now = time.monotonic()
        with self._lock:
            for agency in [a for a, q in self._queue.items() if now - q.since > QUEUE_SECONDS]:
                del self._queue[agency]
            return {a: set(self._discovering.get(a, ())) for a in self._queue}

    def settle(self, agency: str) -> bool:
        """Drop the agency from the queue when its managed set, as the re-evaluation
        just loaded it, holds the awaited addresses; False: not committed yet, keep it."""
        with self._lock:
            queued = self._queue.get(agency)
            if queued is None:
                return True
            if queued.addresses <= self._known.get(agency, frozenset()):
                del self._queue[agency]
                return True
            return False

    def _agency_hosts(self, agency: str, agent_id: str) -> list[HostLan]:
        """The own addresses of every other host of the agency, from its latest report."""
        if self._database is None:
            self._database = _database(self._url)
        found: list[HostLan] = []
        with self._database.session() as session:
            rows = list(
                session.execute(
                    select(Host.agent_id, Host.last_report_pk, Host.results_report_pk).where(
                        Host.agency_id == agency, Host.agent_id != agent_id
                    )
                )
            )
            for start in range(0, len(rows), _BATCH):
                batch = rows[start : start + _BATCH]
                pks = [pk for _, last, results in batch if (pk := last or results) is not None]
                loaded = load_domains(session, pks, ("host",))
                for other, last, results in batch:
                    pk = last or results
                    domains = loaded.get(pk, {}) if pk is not None else {}
                    macs, ips = own_addresses(domains.get("host"))
                    found.append(HostLan(other, agency, other, macs, ips, None))
        return found


def domain_of(devices: Sequence[LanDevice], hosts: int) -> dict[str, Any]:
    """The domain's value: one entry per device, keyed by MAC, else IP."""
    return {
        "enrolled_hosts": hosts,
        "device_count": len(devices),
        "unmanaged_count": sum(1 for d in devices if not d.managed),
        "devices": [
            {
                "key": device.mac or device.ips[0],
                "ip": device.ips[0],
                "ips": list(device.ips),
                "mac": device.mac,
                "vendor": device.vendor,
                "found_by": list(device.found_by),
                "managed": device.managed,
                "managed_agent_id": device.managed_host,
            }
            for device in devices
        ],
    }


def _sweep_problem(discovery: Mapping[str, Any]) -> str | None:
    devices = discovery.get("devices")
    if discovery.get("complete") is False or not isinstance(devices, list):
        return "the sweep was cut short by a cap: devices beyond it are unknown"
    if not devices:
        # Even an empty segment has its gateway: no answer at all is a broken sweep.
        return "the sweep found no device at all (not even the gateway)"
    return None


def _agent_error(facts: Mapping[str, Any]) -> str | None:
    errors = facts.get("errors")
    for entry in errors if isinstance(errors, list) else ():
        if isinstance(entry, Mapping) and entry.get("domain") == "discovery":
            return str(entry.get("reason", ""))
    return None


def _with_error(facts: dict[str, Any], reason: str) -> dict[str, Any]:
    errors = facts.get("errors")
    entry = {"domain": DOMAIN, "kind": "failed", "reason": reason}
    facts["errors"] = [*(errors if isinstance(errors, list) else []), entry]
    return facts
