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
read time, so it needs no table of its own and every replica agrees.
"""

from __future__ import annotations

import ipaddress
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from rules.derived import parse_timestamp
from server.storage.fact_store import load_domains
from server.storage.models import Host

_DOMAINS = ("host", "discovery")


@dataclass(frozen=True)
class OpenPort:
    port: int
    protocol: str
    service: str  # the agent's guess from the port number, never a banner
    found_by: str  # syn | connect


@dataclass(frozen=True)
class Sighting:
    """One device as one agent reported it."""

    agent_id: str
    host: str  # the reporting host's label
    ip: str
    mac: str | None
    vendor: str
    found_by: str  # arp | connect
    ports: tuple[OpenPort, ...]
    first_seen: datetime
    last_seen: datetime


@dataclass(frozen=True)
class HostLan:
    """What one host contributes: its own addresses, and what it discovered (None when
    its latest report carried no `discovery` domain)."""

    agent_id: str
    agency: str
    label: str
    own_macs: frozenset[str]
    own_ips: frozenset[str]
    sightings: tuple[Sighting, ...] | None


@dataclass(frozen=True)
class LanDevice:
    agency: str
    mac: str | None
    ips: tuple[str, ...]
    vendor: str
    managed: bool
    managed_host: str | None  # agent id of the enrolled host it is
    found_by: tuple[str, ...]
    ports: tuple[OpenPort, ...]
    first_seen: datetime
    last_seen: datetime
    seen_by: tuple[Sighting, ...]


def _own_addresses(host_domain: Any) -> tuple[frozenset[str], frozenset[str]]:
    macs: set[str] = set()
    ips: set[str] = set()
    interfaces = host_domain.get("interfaces") if isinstance(host_domain, Mapping) else None
    for interface in interfaces if isinstance(interfaces, list) else ():
        if not isinstance(interface, Mapping):
            continue
        mac = interface.get("mac")
        if isinstance(mac, str) and mac != "00:00:00:00:00:00":
            macs.add(mac.lower())
        addresses = interface.get("addresses")
        for entry in addresses if isinstance(addresses, list) else ():
            address = entry.get("address") if isinstance(entry, Mapping) else None
            ip = _ip(address) if isinstance(address, str) else None
            if ip is not None and not ip.is_loopback:
                ips.add(str(ip))
    return frozenset(macs), frozenset(ips)


@lru_cache(maxsize=65536)  # the same addresses are parsed again and again: per sighting, to sort
def _ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        return None


def _ports(device: Mapping[str, Any]) -> tuple[OpenPort, ...]:
    ports = device.get("ports")
    found: list[OpenPort] = []
    for port in ports if isinstance(ports, list) else ():
        if isinstance(port, Mapping) and port.get("state") == "open":
            found.append(
                OpenPort(
                    int(port["port"]),
                    str(port.get("protocol", "tcp")),
                    str(port.get("service", "")),
                    str(port.get("found_by", "")),
                )
            )
    return tuple(found)


def sightings_of(
    discovery: Any, agent_id: str, label: str, reported_at: datetime
) -> tuple[Sighting, ...]:
    """The devices of one `discovery` domain value."""
    if not isinstance(discovery, Mapping) or not isinstance(discovery.get("devices"), list):
        return ()
    swept_at = parse_timestamp(discovery.get("swept_at")) or reported_at
    found: list[Sighting] = []
    for device in discovery["devices"]:
        if not isinstance(device, Mapping) or not isinstance(device.get("ip"), str):
            continue
        mac = device.get("mac")
        parsed = _ip(device["ip"])
        first = parse_timestamp(device.get("first_seen")) or swept_at
        last = parse_timestamp(device.get("last_seen")) or swept_at
        found.append(
            Sighting(
                agent_id,
                label,
                str(parsed) if parsed is not None else device["ip"],
                mac.lower() if isinstance(mac, str) else None,
                str(device.get("vendor", "")),
                str(device.get("found_by", "")),
                _ports(device),
                min(first, last),
                last,
            )
        )
    return tuple(found)


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
        macs, ips = _own_addresses(domains.get("host"))
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


def _sort_key(text: str) -> tuple[int, int, str]:
    ip = _ip(text)
    return (0, int(ip), text) if ip is not None and ip.version == 4 else (1, 0, text)


def _group(sightings: Iterable[Sighting]) -> list[list[Sighting]]:
    """By MAC; a sighting without a MAC joins the one MAC group holding its IP."""
    by_mac: dict[str, list[Sighting]] = defaultdict(list)
    without: list[Sighting] = []
    for sighting in sightings:
        (by_mac[sighting.mac] if sighting.mac else without).append(sighting)
    macs_of_ip: dict[str, set[str]] = defaultdict(set)
    for mac, group in by_mac.items():
        for sighting in group:
            macs_of_ip[sighting.ip].add(mac)
    by_ip: dict[str, list[Sighting]] = defaultdict(list)
    for sighting in without:
        macs = macs_of_ip.get(sighting.ip, set())
        if len(macs) == 1:  # two MACs on one IP: which one is ambiguous, keep it apart
            by_mac[next(iter(macs))].append(sighting)
        else:
            by_ip[sighting.ip].append(sighting)
    return [*by_mac.values(), *by_ip.values()]


def merge_agency(agency: str, hosts: Sequence[HostLan]) -> list[LanDevice]:
    """The agency's devices, managed ones matched to their host; IPv4 order."""
    host_of_mac = {mac: h.agent_id for h in hosts for mac in sorted(h.own_macs)}
    host_of_ip = {ip: h.agent_id for h in hosts for ip in sorted(h.own_ips)}
    sightings = [s for h in hosts for s in h.sightings or ()]
    devices: list[LanDevice] = []
    for group in _group(sightings):
        mac = next((s.mac for s in group if s.mac), None)
        ips = tuple(sorted({s.ip for s in group}, key=_sort_key))
        managed_host = host_of_mac.get(mac) if mac else None
        if managed_host is None:
            managed_host = next((host_of_ip[ip] for ip in ips if ip in host_of_ip), None)
        ports: dict[tuple[str, int], OpenPort] = {}
        for sighting in group:
            for port in sighting.ports:
                ports.setdefault((port.protocol, port.port), port)
        devices.append(
            LanDevice(
                agency=agency,
                mac=mac,
                ips=ips,
                vendor=next((s.vendor for s in group if s.vendor), ""),
                managed=managed_host is not None,
                managed_host=managed_host,
                found_by=tuple(sorted({s.found_by for s in group})),
                ports=tuple(ports[key] for key in sorted(ports)),
                first_seen=min(s.first_seen for s in group),
                last_seen=max(s.last_seen for s in group),
                seen_by=tuple(sorted(group, key=lambda s: (s.agent_id, _sort_key(s.ip)))),
            )
        )
    devices.sort(key=lambda d: (_sort_key(d.ips[0]), d.mac or ""))
    return devices


def merge_all(hosts: Iterable[HostLan]) -> dict[str, list[LanDevice]]:
    """agency -> its devices, for every agency with at least one host."""
    by_agency: dict[str, list[HostLan]] = defaultdict(list)
    for host in hosts:
        by_agency[host.agency].append(host)
    return {agency: merge_agency(agency, by_agency[agency]) for agency in sorted(by_agency)}


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
