"""The devices on agencies' LANs, from the `discovery` domain of every host's latest report.

Each discovering agent reports the devices that answered its sweep (agent/discovery);
an agency's view merges them: one device per MAC address, and a device seen without
a MAC (TCP connect discovery cannot learn one off-link) joins the device that has its
IP address, else stands alone under that IP. A device is `managed` when its MAC, else
one of its IP addresses, belongs to an enrolled host of the same agency (that host's
own `host.interfaces`); loopback addresses never match. Devices are merged within an
agency only: private address plans repeat across agencies.

First and last seen are the agents' own (`devices[].first_seen`/`last_seen`), else the
sweep's time (`swept_at`), else the time of the report that carried the domain; a
device's are the earliest and latest over the agents that saw it, and `seen_by`
names them. Nothing here is stored: the answer is computed from the latest facts at
read time, so it needs no table of its own and every replica agrees. The matching
(`server.lanmatch`) is the one evaluation uses for the discovering host's
LAN-UNMANAGED-DEVICE rule.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

# The matching itself is shared with evaluation (the LAN-UNMANAGED-DEVICE rule's input);
# its names stay importable from here for the metrics, the audit and the benchmarks.
from server.lanmatch import (
    HostLan,
    LanDevice,
    OpenPort,
    Sighting,
    merge_agency,
    merge_all,
    own_addresses,
    sightings_of,
)
from server.storage.fact_store import load_domains
from server.storage.models import Host

__all__ = [
    "HostLan",
    "HostReport",
    "LanDevice",
    "OpenPort",
    "Sighting",
    "device_answer",
    "host_lan",
    "lan_of_reports",
    "list_devices",
    "load_host_lan",
    "merge_agency",
    "merge_all",
    "sightings_of",
]

_DOMAINS = ("host", "discovery")


@dataclass(frozen=True)
class HostReport:
    """Which report of a host to read the LAN from (None: the host has none)."""

    agent_id: str
    agency: str
    label: str
    report_pk: int | None
    collected_at: datetime


def lan_of_reports(session: Session, reports: Sequence[HostReport]) -> list[HostLan]:
    """Each host's own addresses and discoveries, from the given report of each (the
    latest for the live view, the newest before a cut-off for the audit)."""
    loaded = load_domains(
        session, [r.report_pk for r in reports if r.report_pk is not None], _DOMAINS
    )
    found: list[HostLan] = []
    for r in reports:
        domains = loaded.get(r.report_pk, {}) if r.report_pk is not None else {}
        macs, ips = own_addresses(domains.get("host"))
        sightings = (
            sightings_of(domains["discovery"], r.agent_id, r.label, r.collected_at)
            if "discovery" in domains
            else None
        )
        found.append(HostLan(r.agent_id, r.agency, r.label, macs, ips, sightings))
    return found


def host_lan(session: Session, hosts: Sequence[Host]) -> list[HostLan]:
    """Each host's own addresses and discoveries, from its latest report."""
    return lan_of_reports(
        session,
        [
            HostReport(
                h.agent_id,
                h.agency_id,
                h.label,
                h.last_report_pk or h.results_report_pk,
                h.last_collected_at,
            )
            for h in hosts
        ],
    )


def load_host_lan(session: Session, agent_ids: Sequence[str]) -> list[HostLan]:
    """`host_lan` of these hosts (absent ones left out), 500 at a time."""
    found: list[HostLan] = []
    for start in range(0, len(agent_ids), 500):
        batch = list(agent_ids[start : start + 500])
        found.extend(
            host_lan(session, list(session.scalars(select(Host).where(Host.agent_id.in_(batch)))))
        )
    return found


def _time(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


def device_answer(device: LanDevice) -> dict[str, Any]:
    return {
        "agency": device.agency,
        "mac": device.mac,
        "ips": list(device.ips),
        "vendor": device.vendor,
        "managed": device.managed,
        "managed_agent_id": device.managed_host,
        "found_by": list(device.found_by),
        "first_seen": _time(device.first_seen),
        "last_seen": _time(device.last_seen),
        "ports": [
            {"port": p.port, "protocol": p.protocol, "service": p.service, "found_by": p.found_by}
            for p in device.ports
        ],
        "seen_by": [
            {
                "agent_id": s.agent_id,
                "host": s.host,
                "ip": s.ip,
                "found_by": s.found_by,
                "first_seen": _time(s.first_seen),
                "last_seen": _time(s.last_seen),
            }
            for s in device.seen_by
        ],
    }


def list_devices(
    session: Session,
    *,
    limit: int,
    offset: int,
    agency: str | None = None,
    managed: bool | None = None,
    scope: str | None = None,
) -> dict[str, Any]:
    """The devices of the agencies in `scope` (an agency-scoped token's), filtered."""
    query = select(Host)
    if scope is not None:
        query = query.where(Host.agency_id == scope)
    if agency is not None:
        query = query.where(Host.agency_id == agency)
    hosts = host_lan(session, list(session.scalars(query.order_by(Host.id))))
    devices = [d for found in merge_all(hosts).values() for d in found]
    if managed is not None:
        devices = [d for d in devices if d.managed is managed]
    return {
        "items": [device_answer(d) for d in devices[offset : offset + limit]],
        "total": len(devices),
        "limit": limit,
        "offset": offset,
        "discovering_hosts": sum(1 for h in hosts if h.sightings is not None),
    }
