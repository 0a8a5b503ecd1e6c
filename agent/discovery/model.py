"""The values discovery produces: port states, how a fact was found, devices and
ports (frozen), and the result of one scan with its notes."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class PortState(StrEnum):
    """As nmap tells them apart for a SYN (or connect) probe."""

    OPEN = "open"  # SYN-ACK (connect succeeded)
    CLOSED = "closed"  # RST (connection refused)
    FILTERED = "filtered"  # no answer after a retransmission, or ICMP unreachable


class Method(StrEnum):
    """How a device or a port state was found."""

    ARP = "arp"  # layer-2 ARP request answered
    ICMP = "icmp"  # a routed host answered an ICMP echo request
    TCP = "tcp"  # a routed host answered a TCP probe (SYN to 443 or ACK to 80) only
    SYN = "syn"  # raw TCP SYN
    CONNECT = "connect"  # the kernel's TCP connect (no raw sockets)


class Fallback(StrEnum):
    """Why TCP connect was used instead of ARP and SYN: the CLI words it in each
    language (the system's own reason, English, stays in the result's notes)."""

    NO_SCAPY = "no_scapy"  # the `scan` extra is not installed
    RAW_DENIED = "raw_denied"  # not root and no CAP_NET_RAW
    RAW_UNAVAILABLE = "raw_unavailable"  # the kernel refused a packet socket


@dataclass(frozen=True)
class Port:
    port: int
    state: PortState
    method: Method
    service: str  # a guess from the port number alone, never from a banner
    reason: str  # what was seen: syn-ack, rst, no-response, icmp-unreachable...


@dataclass(frozen=True)
class Device:
    ip: str
    mac: str | None  # lower-case, colon-separated; None when not learnt
    vendor: str  # "" when no OUI table knows it
    found_by: Method
    ports: tuple[Port, ...] = ()

    def open_ports(self) -> tuple[Port, ...]:
        return tuple(p for p in self.ports if p.state is PortState.OPEN)


@dataclass(frozen=True)
class ScanResult:
    subnets: tuple[str, ...]
    ports: tuple[int, ...]
    port_method: Method | None  # None when no live host was probed
    devices: tuple[Device, ...]
    notes: tuple[str, ...] = field(default=())  # e.g. why connect was used instead of SYN
    hosts_swept: int = 0
    fallback: Fallback | None = None  # set when connect was used instead of ARP and SYN
