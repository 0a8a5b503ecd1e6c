"""The probes that need raw sockets, sent with scapy at layer 2 on the target's
interface: the ARP sweep (two passes: a single sweep is known to miss replies) and
the TCP SYN probe of live hosts, read as nmap reads it (SYN-ACK open, RST closed,
ICMP unreachable or silence after one retransmission filtered). Routed subnets are
probed at layer 3 through the routing table: an ICMP echo request, a TCP SYN to 443
and a TCP ACK to 80 per address (as `nmap -sn` does as root), then the same SYN probe.

scapy is imported inside these functions only (`scan` extra; the agent's own import
stays scapy-free).
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping, Sequence
from typing import Any

from agent.discovery.model import PortState
from agent.discovery.targets import Target

ARP_PASSES = 2
SYN_PASSES = 2  # the first send and one retransmission of unanswered probes, as nmap
# ICMP destination-unreachable codes nmap reads as "filtered" for a TCP probe.
FILTERING_ICMP_CODES = frozenset({0, 1, 2, 3, 9, 10, 13})

Verdict = tuple[PortState, str]


def arp_sweep(target: Target, pps: int, timeout: float) -> dict[str, str]:
    """{ip: mac} of the hosts of `target` that answered an ARP request."""
    # scapy is the optional `scan` extra and slow to import: loaded only to send.
    from scapy.layers.l2 import ARP, Ether  # noqa: PLC0415
    from scapy.sendrecv import srp  # noqa: PLC0415

    found: dict[str, str] = {}
    remaining = [str(h) for h in target.hosts]
    for _ in range(ARP_PASSES):
        if not remaining:
            break
        packets = [
            Ether(dst="ff:ff:ff:ff:ff:ff") / ARP(pdst=ip, psrc=str(target.own_address))
            for ip in remaining
        ]
        answered, _ = srp(
            packets, iface=target.interface, timeout=timeout, inter=1.0 / pps, verbose=False
        )
        for _sent, reply in answered:
            if reply.haslayer(ARP) and reply[ARP].op == 2:
                found[str(reply[ARP].psrc)] = str(reply[ARP].hwsrc).lower()
        remaining = [ip for ip in remaining if ip not in found]
    return found


def syn_probe(
    target: Target,
    hosts: Mapping[str, str],
    ports: Sequence[int],
    pps: int,
    timeout: float,
) -> dict[tuple[str, int], Verdict]:
    """{(ip, port): (state, reason)} for every live host (ip -> mac) and port."""
    # scapy is the optional `scan` extra and slow to import: loaded only to send.
    from scapy.layers.inet import IP, TCP  # noqa: PLC0415
    from scapy.layers.l2 import Ether  # noqa: PLC0415
    from scapy.sendrecv import srp  # noqa: PLC0415

    sport = 40000 + secrets.randbelow(20000)
    verdicts: dict[tuple[str, int], Verdict] = {}
    pending = [(ip, port) for ip in hosts for port in ports]
    for _ in range(SYN_PASSES):
        if not pending:
            break
        packets = [
            Ether(dst=hosts[ip])
            / IP(src=str(target.own_address), dst=ip)
            / TCP(sport=sport, dport=port, flags="S", seq=secrets.randbits(32))
            for ip, port in pending
        ]
        answered, _ = srp(
            packets, iface=target.interface, timeout=timeout, inter=1.0 / pps, verbose=False
        )
        _read_verdicts(answered, verdicts)
        pending = [key for key in pending if key not in verdicts]
    for key in pending:
        verdicts[key] = (PortState.FILTERED, "no-response")
    return verdicts


def _read_verdicts(answered: Any, verdicts: dict[tuple[str, int], Verdict]) -> None:
    """SYN-ACK open, RST closed, a filtering ICMP unreachable filtered (as nmap)."""
    from scapy.layers.inet import ICMP, IP, TCP  # noqa: PLC0415  # the `scan` extra

    for sent, reply in answered:
        key = (str(sent[IP].dst), int(sent[TCP].dport))
        if reply.haslayer(TCP) and not reply.haslayer(ICMP):
            flags = reply[TCP].flags
            if flags.S and flags.A:
                verdicts[key] = (PortState.OPEN, "syn-ack")
            elif flags.R:
                verdicts[key] = (PortState.CLOSED, "rst")
        elif reply.haslayer(ICMP) and reply[ICMP].type == 3:
            code = int(reply[ICMP].code)
            if code in FILTERING_ICMP_CODES:
                verdicts[key] = (PortState.FILTERED, f"icmp-unreachable-{code}")


def ping_sweep(hosts: Sequence[str], pps: int, timeout: float) -> dict[str, str]:
    """{ip: "icmp" | "tcp"} of the routed hosts that answered: an echo reply, else any
    TCP answer (SYN-ACK or RST) to the SYN to 443 or the ACK to 80. Two passes."""
    # scapy is the optional `scan` extra and slow to import: loaded only to send.
    from scapy.layers.inet import ICMP, IP, TCP  # noqa: PLC0415
    from scapy.sendrecv import sr  # noqa: PLC0415

    sport = 40000 + secrets.randbelow(20000)
    found: dict[str, str] = {}
    remaining = list(hosts)
    for _ in range(ARP_PASSES):
        if not remaining:
            break
        packets = []
        for ip in remaining:
            packets.append(IP(dst=ip) / ICMP(id=sport, seq=1))
            packets.append(IP(dst=ip) / TCP(sport=sport, dport=443, flags="S"))
            packets.append(IP(dst=ip) / TCP(sport=sport, dport=80, flags="A"))
        answered, _ = sr(packets, timeout=timeout, inter=1.0 / pps, verbose=False)
        for sent, reply in answered:
            ip = str(sent[IP].dst)
            if reply.haslayer(ICMP) and reply[ICMP].type == 0:
                found[ip] = "icmp"
            elif reply.haslayer(TCP) and not reply.haslayer(ICMP):
                found.setdefault(ip, "tcp")
        remaining = [ip for ip in remaining if ip not in found]
    return found


def syn_probe_routed(
    hosts: Sequence[str], ports: Sequence[int], pps: int, timeout: float
) -> dict[tuple[str, int], Verdict]:
    """`syn_probe` for routed hosts: at layer 3, through the routing table."""
    # scapy is the optional `scan` extra and slow to import: loaded only to send.
    from scapy.layers.inet import IP, TCP  # noqa: PLC0415
    from scapy.sendrecv import sr  # noqa: PLC0415

    sport = 40000 + secrets.randbelow(20000)
    verdicts: dict[tuple[str, int], Verdict] = {}
    pending = [(ip, port) for ip in hosts for port in ports]
    for _ in range(SYN_PASSES):
        if not pending:
            break
        packets = [
            IP(dst=ip) / TCP(sport=sport, dport=port, flags="S", seq=secrets.randbits(32))
            for ip, port in pending
        ]
        answered, _ = sr(packets, timeout=timeout, inter=1.0 / pps, verbose=False)
        _read_verdicts(answered, verdicts)
        pending = [key for key in pending if key not in verdicts]
    for key in pending:
        verdicts[key] = (PortState.FILTERED, "no-response")
    return verdicts
