"""What may be probed: subnet safety and the scan plan.

Only IPv4 subnets that lie inside a subnet attached to one of this host's interfaces
are swept by ARP (layer 2); a subnet given on the command line or in the
configuration is checked the same way. Subnets behind a router are swept only when
listed in `routed_subnets` (ICMP echo and TCP probes, layer 3), never an attached
one. Public ranges are refused unless `allow_public` is set, and a subnet with more
hosts than `max_hosts` is refused. The plan lists exactly the addresses and ports a
scan would touch: `--dry-run` prints it.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Interface, IPv4Network

import psutil

from agent.discovery.config import DiscoveryConfig
from agent.discovery.errors import Refusal, RefusalKind, SubnetRefusedError


@dataclass(frozen=True)
class Attached:
    """An IPv4 address of an interface that is up (loopback excluded)."""

    interface: str
    address: IPv4Interface


@dataclass(frozen=True)
class Target:
    network: IPv4Network
    interface: str
    own_address: IPv4Address
    hosts: tuple[IPv4Address, ...]  # every host address except our own


@dataclass(frozen=True)
class RoutedTarget:
    """A subnet behind a router: reached through the routing table, no MAC learnt."""

    network: IPv4Network
    hosts: tuple[IPv4Address, ...]


@dataclass(frozen=True)
class Plan:
    targets: tuple[Target, ...]
    ports: tuple[int, ...]
    packets_per_second: int
    timeout_seconds: float
    routed: tuple[RoutedTarget, ...] = ()

    @property
    def host_count(self) -> int:
        return sum(len(t.hosts) for t in self.targets) + sum(len(r.hosts) for r in self.routed)


def attached_subnets() -> tuple[Attached, ...]:
    """The IPv4 addresses of this host's up, non-loopback interfaces (psutil)."""
    stats = psutil.net_if_stats()
    found: list[Attached] = []
    for name, addresses in sorted(psutil.net_if_addrs().items()):
        stat = stats.get(name)
        if stat is None or not stat.isup:
            continue
        for a in addresses:
            if a.family.name != "AF_INET" or not a.netmask:
                continue
            iface = IPv4Interface(f"{a.address}/{a.netmask}")
            if not iface.ip.is_loopback:
                found.append(Attached(name, iface))
    return tuple(found)


def make_plan(
    requested: Sequence[str],
    config: DiscoveryConfig,
    attached: Sequence[Attached],
    ports: Sequence[int] | None = None,
) -> Plan:
    """The targets for `requested` CIDRs (else the configured ones, else every attached
    subnet); SubnetRefusedError naming every refused subnet and why."""
    wanted = list(requested) or list(config.subnets)
    if not wanted:
        wanted = [str(a.address.network) for a in attached]
        if not wanted:
            raise SubnetRefusedError(
                (Refusal("", RefusalKind.NO_ATTACHED, "no attached IPv4 subnet to sweep"),)
            )
    refusals: list[Refusal] = []
    targets: list[Target] = []
    seen: set[IPv4Network] = set()
    for text in wanted:
        network = _ipv4_subnet(text, refusals)
        if network is None:
            continue
        reason = _refusal(network, config)
        link = next((a for a in attached if network.subnet_of(a.address.network)), None)
        if reason is None and link is None:
            reason = Refusal(
                str(network),
                RefusalKind.NOT_ATTACHED,
                "not inside an attached subnet (routed subnets are not swept)",
            )
        if reason is not None:
            refusals.append(reason)
            continue
        assert link is not None
        if network in seen:
            continue
        seen.add(network)
        hosts = _hosts(network, link.address.network)
        targets.append(
            Target(
                network,
                link.interface,
                link.address.ip,
                tuple(h for h in hosts if h != link.address.ip),
            )
        )
    # Routed subnets come from the configuration only, and not when the caller named
    # the subnets to sweep (`discover --subnet`).
    routed = [] if requested else _routed(config, attached, refusals)
    if refusals:
        raise SubnetRefusedError(tuple(refusals))
    return Plan(
        tuple(targets),
        tuple(ports) if ports is not None else config.ports,
        config.packets_per_second,
        config.timeout_seconds,
        tuple(routed),
    )


def _ipv4_subnet(text: str, refusals: list[Refusal]) -> IPv4Network | None:
    """`text` as an IPv4 subnet, or None with the reason added to `refusals`."""
    try:
        network = ipaddress.ip_network(text.strip(), strict=False)
    except ValueError:
        refusals.append(Refusal(text, RefusalKind.NOT_CIDR, "not a CIDR subnet"))
        return None
    if not isinstance(network, IPv4Network):
        refusals.append(Refusal(text, RefusalKind.IPV6, "IPv6 discovery is not supported"))
        return None
    return network


def _routed(
    config: DiscoveryConfig, attached: Sequence[Attached], refusals: list[Refusal]
) -> list[RoutedTarget]:
    found: list[RoutedTarget] = []
    for text in config.routed_subnets:
        network = _ipv4_subnet(text, refusals)
        if network is None:
            continue
        reason = _refusal(network, config)
        if reason is None and any(network.overlaps(a.address.network) for a in attached):
            reason = Refusal(
                str(network),
                RefusalKind.ATTACHED_ROUTED,
                "attached to this host: list it in subnets (swept by ARP)",
            )
        if reason is not None:
            refusals.append(reason)
        elif all(r.network != network for r in found):
            found.append(RoutedTarget(network, tuple(_hosts(network, network))))
    return found


def _refusal(network: IPv4Network, config: DiscoveryConfig) -> Refusal | None:
    if network.is_loopback or network.is_multicast or network.is_unspecified:
        return Refusal(
            str(network), RefusalKind.SPECIAL, "loopback, multicast or unspecified range"
        )
    if not network.is_private and not config.allow_public:
        return Refusal(
            str(network),
            RefusalKind.PUBLIC,
            "public range (set agent.discovery.allow_public to sweep it)",
        )
    size = network.num_addresses - (2 if network.prefixlen < 31 else 0)
    if size > config.max_hosts:
        return Refusal(
            str(network),
            RefusalKind.TOO_LARGE,
            f"{size} hosts, more than max_hosts {config.max_hosts}",
            size,
            config.max_hosts,
        )
    return None


def _hosts(network: IPv4Network, link: IPv4Network) -> list[IPv4Address]:
    # The link's own network and broadcast addresses are never hosts, also when the
    # requested subnet is the whole link.
    return [h for h in network if h not in (link.network_address, link.broadcast_address)]
