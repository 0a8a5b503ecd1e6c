"""A small fleet of discovering agents, reported through the real ingest service, shared
by the LAN read, API and metrics tests.

so-a: `agent-scan` (10.0.0.1) and `agent-scan2` (10.0.0.3) sweep the LAN; `agent-web`
(10.0.0.2, MAC ...:02) is enrolled and does not sweep. Seen: web (managed by MAC), a
NAS at 10.0.0.50 (unmanaged, telnet; seen by both scanners, SMB only by the second),
a printer at 10.0.0.60 seen with its MAC by one scanner and without by the other
(agent-scan2 sweeps with TCP connect), and 10.0.0.1 seen by agent-scan2 without a
MAC: agent-scan's own IP, so managed by IP. so-b: one scanner seeing the same IP and MAC as so-a's NAS (another
LAN: never merged across agencies).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from server.ingest.service import IngestService
from server.storage.database import Database
from tests.server.helpers import body_of, iso, make_facts, new_token

T0 = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)
NAS_MAC = "00:11:32:aa:bb:cc"
PRINTER_MAC = "00:1b:a9:01:02:03"


def host_domain(hostname: str, ip: str, mac: str) -> dict[str, Any]:
    return {
        "hostname": hostname,
        "os": {"id": "debian", "name": "Debian GNU/Linux", "pretty_name": "Debian 12"},
        "kernel": {"release": "6.1.0-18-amd64"},
        "architecture": "x86_64",
        "interfaces": [
            {"name": "lo", "mac": None, "addresses": [{"family": "ipv4", "address": "127.0.0.1"}]},
            {
                "name": "eth0",
                "mac": mac,
                "addresses": [
                    {"family": "ipv4", "address": ip, "prefix_length": 24},
                    {"family": "ipv6", "address": "fe80::1%eth0", "prefix_length": 64},
                ],
            },
        ],
    }


def port(number: int, service: str, found_by: str = "syn") -> dict[str, Any]:
    reason = "syn-ack" if found_by == "syn" else "connected"
    return {
        "port": number,
        "protocol": "tcp",
        "state": "open",
        "service": service,
        "found_by": found_by,
        "reason": reason,
    }


def device(
    ip: str,
    mac: str | None,
    *ports: dict[str, Any],
    vendor: str = "",
    found_by: str = "arp",
    **seen: str,
) -> dict[str, Any]:
    fields = {"ip": ip, "mac": mac, "vendor": vendor, "found_by": found_by, "ports": list(ports)}
    return fields | seen


def discovery(*devices: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "subnets": ["10.0.0.0/24"],
        "ports_probed": [23, 445, 9100],
        "port_method": "syn",
        "hosts_swept": 254,
        "device_count": len(devices),
        "open_port_count": sum(len(d["ports"]) for d in devices),
        "notes": [],
        "devices": list(devices),
    } | extra


def report(
    service: IngestService, token: str, agent_id: str, host: dict[str, Any], **facts: Any
) -> None:
    body = body_of(make_facts(agent_id=agent_id, hostname=host["hostname"], host=host, **facts))
    service.ingest(service.authenticate(token), body, None)


def build(service: IngestService, database: Database) -> dict[str, str]:
    """Reports the fleet; each agent's token by agent id."""
    a_scan, a_scan2, a_web = (new_token(database, "so-a") for _ in range(3))
    b_scan = new_token(database, "so-b")
    web = host_domain("web01", "10.0.0.2", "52:54:00:00:00:02")
    report(service, a_web, "agent-web", web, collected_at=T0)
    report(
        service,
        a_scan,
        "agent-scan",
        host_domain("scan01", "10.0.0.1", "52:54:00:00:00:01"),
        collected_at=T0 + timedelta(hours=1),
        discovery=discovery(
            device("10.0.0.2", "52:54:00:00:00:02"),
            device(
                "10.0.0.50",
                NAS_MAC,
                port(23, "telnet"),
                vendor="Synology",
                first_seen=iso(T0 - timedelta(days=3)),
                last_seen=iso(T0),
            ),
            device("10.0.0.60", PRINTER_MAC, port(9100, "jetdirect")),
            swept_at=iso(T0 - timedelta(minutes=5)),
        ),
    )
    report(
        service,
        a_scan2,
        "agent-scan2",
        host_domain("scan02", "10.0.0.3", "52:54:00:00:00:03"),
        collected_at=T0 + timedelta(hours=2),
        discovery=discovery(
            device(
                "10.0.0.50",
                NAS_MAC,
                port(23, "telnet", "connect"),
                port(445, "microsoft-ds", "connect"),
                found_by="connect",
                first_seen=iso(T0 - timedelta(days=1)),
                last_seen=iso(T0 + timedelta(hours=1)),
            ),
            device("10.0.0.60", None, port(9100, "jetdirect", "connect"), found_by="connect"),
            device("10.0.0.1", None, found_by="connect"),
            port_method="connect",
        ),
    )
    report(
        service,
        b_scan,
        "agent-b",
        host_domain("scan-b", "10.0.0.1", "52:54:00:00:0b:01"),
        collected_at=T0,
        discovery=discovery(device("10.0.0.50", NAS_MAC, port(3306, "mysql"))),
    )
    return {"agent-scan": a_scan, "agent-scan2": a_scan2, "agent-web": a_web, "agent-b": b_scan}
