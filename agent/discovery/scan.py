"""One scan of a plan: ARP sweep and SYN probe with raw sockets, or TCP connect where
raw sockets are refused (or scapy is missing) — the result says which, and why."""

from __future__ import annotations

import importlib.util
import socket
from collections.abc import Callable
from pathlib import Path

from agent.discovery.connect import connect_probe
from agent.discovery.errors import DiscoveryError
from agent.discovery.model import Device, Fallback, Method, Port, ScanResult
from agent.discovery.oui import vendor_lookup, vendor_of
from agent.discovery.packets import arp_sweep, ping_sweep, syn_probe, syn_probe_routed
from agent.discovery.services import service_guess
from agent.discovery.targets import Plan, RoutedTarget, Target

NEIGHBOURS = Path("/proc/net/arp")
ARP_COMPLETE = 0x2


Refusal = tuple[Fallback, str]  # the kind, for the CLI's words, and the system's reason


def raw_refusal() -> Refusal | None:
    """Why SYN/ARP probing is impossible here, or None when it is possible."""
    if importlib.util.find_spec("scapy") is None:
        return Fallback.NO_SCAPY, "scapy is not installed (install the agent's `scan` extra)"
    try:
        socket.socket(socket.AF_PACKET, socket.SOCK_RAW).close()
    except PermissionError as e:
        return (
            Fallback.RAW_DENIED,
            f"raw sockets not permitted ({e.strerror}; needs root or CAP_NET_RAW)",
        )
    except OSError as e:
        return Fallback.RAW_UNAVAILABLE, f"raw sockets unavailable ({e.strerror})"
    return None


def run_scan(plan: Plan, *, refusal: Callable[[], Refusal | None] = raw_refusal) -> ScanResult:
    why_not_raw = refusal()
    fallback: Fallback | None = None
    try:
        if why_not_raw is None:
            devices = _raw_scan(plan)
            method = Method.SYN
            notes: tuple[str, ...] = ()
        else:
            devices = _connect_scan(plan)
            method = Method.CONNECT
            fallback, reason = why_not_raw
            notes = (f"TCP connect used instead of ARP and SYN: {reason}",)
    except OSError as e:
        raise DiscoveryError(f"scan failed: {e.strerror or e}") from e
    return ScanResult(
        subnets=tuple(str(t.network) for t in plan.targets)
        + tuple(str(r.network) for r in plan.routed),
        ports=plan.ports,
        port_method=method if any(d.ports for d in devices) else None,
        devices=tuple(sorted(devices, key=lambda d: socket.inet_aton(d.ip))),
        notes=notes,
        hosts_swept=plan.host_count,
        fallback=fallback,
    )


def _raw_scan(plan: Plan) -> list[Device]:
    lookup = vendor_lookup(scapy_loaded=True)
    devices: list[Device] = []
    for target in plan.targets:
        live = arp_sweep(target, plan.packets_per_second, plan.timeout_seconds)
        verdicts = (
            syn_probe(target, live, plan.ports, plan.packets_per_second, plan.timeout_seconds)
            if live and plan.ports
            else {}
        )
        for ip, mac in live.items():
            ports = tuple(
                Port(port, *verdicts[(ip, port)][:1], Method.SYN, service_guess(port),
                     verdicts[(ip, port)][1])
                for port in plan.ports
            )  # fmt: skip
            devices.append(Device(ip, mac, vendor_of(mac, lookup), Method.ARP, ports))
    routed = [str(h) for r in plan.routed for h in r.hosts]
    if routed:
        alive = ping_sweep(routed, plan.packets_per_second, plan.timeout_seconds)
        answers = (
            syn_probe_routed(list(alive), plan.ports, plan.packets_per_second,
                             plan.timeout_seconds)
            if alive and plan.ports
            else {}
        )  # fmt: skip
        for ip, how in alive.items():
            ports = tuple(
                Port(port, answers[(ip, port)][0], Method.SYN, service_guess(port),
                     answers[(ip, port)][1])
                for port in plan.ports
            )  # fmt: skip
            # Behind a router no MAC is learnt: the router's would be the only one seen.
            devices.append(Device(ip, None, "", Method(how), ports))
    return devices


def _connect_scan(plan: Plan) -> list[Device]:
    """Without raw sockets a host is live when any port answers (open or refused);
    its MAC comes from the kernel's neighbour table the connects filled."""
    groups: list[Target | RoutedTarget] = [*plan.targets, *plan.routed]
    addresses = [h for t in groups for h in t.hosts]
    pairs = [(str(h), p) for h in addresses for p in plan.ports]
    verdicts = connect_probe(pairs, plan.packets_per_second, plan.timeout_seconds)
    neighbours = _neighbours()
    lookup = vendor_lookup(scapy_loaded=False)
    devices: list[Device] = []
    for target in groups:
        for host in (str(h) for h in target.hosts):
            states = [verdicts[(host, p)] for p in plan.ports]
            if not any(reason in ("connected", "refused") for _, reason in states):
                continue
            mac = neighbours.get(host)
            ports = tuple(
                Port(p, state, Method.CONNECT, service_guess(p), reason)
                for p, (state, reason) in zip(plan.ports, states, strict=True)
            )
            devices.append(Device(host, mac, vendor_of(mac, lookup), Method.CONNECT, ports))
    return devices


def _neighbours(path: Path = NEIGHBOURS) -> dict[str, str]:
    try:
        lines = path.read_text("ascii", errors="replace").splitlines()[1:]
    except OSError:
        return {}
    table: dict[str, str] = {}
    for line in lines:
        fields = line.split()
        if len(fields) >= 4 and int(fields[2], 16) & ARP_COMPLETE:
            table[fields[0]] = fields[3].lower()
    return table
