"""Which devices on an agency's LAN are its enrolled hosts: pure matching, no database.

Shared by the read side (`server.read.lan`: the API, metrics and audit views) and by
evaluation (`server.evaluation.lan`: the `lan_managed` domain the collector adds for
the discovering host's rules), so both decide "managed" the same way. Each sighting is
one device as one agent reported it (`discovery.devices`); devices are grouped by MAC,
a MAC-less sighting joins the one MAC group holding its IP. A device is managed when
its MAC, else one of its IP addresses, is an interface of an enrolled host of the same
agency (`host.interfaces`); loopback addresses and the all-zero MAC never match.
"""

from __future__ import annotations

import ipaddress
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any

from rules.derived import parse_timestamp


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


def own_addresses(host_domain: Any) -> tuple[frozenset[str], frozenset[str]]:
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
