"""The `agent.discovery` sub-mapping of the configuration file.

`agent/config.py` keeps the mapping as written; this module gives it meaning, so the
discovery options live beside the code they steer. Every problem is collected and
reported at once, each with its key's path.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from agent.discovery.errors import DiscoveryConfigError

# The risky set of the exposure rules (issue 11): file sharing, remote desktop,
# plaintext mail and login, databases, container and cache daemons left open.
DEFAULT_PORTS: tuple[int, ...] = (
    21, 23, 25, 110, 135, 139, 445, 1433, 1521, 2375, 3306, 3389,
    5432, 5900, 6379, 8080, 9200, 11211, 27017,
)  # fmt: skip
DEFAULT_PPS = 1000  # ARP and SYN alike; nmap -T4 sends far faster
DEFAULT_MAX_HOSTS = 1024  # a /22
DEFAULT_INTERVAL = 86400.0  # a sweep a day; reports in between carry the last one
MIN_INTERVAL = 60.0
MAX_PORTS = 1024
KEYS = (
    "enabled",
    "subnets",
    "ports",
    "packets_per_second",
    "max_hosts",
    "allow_public",
    "timeout_seconds",
    "interval_seconds",
    "routed_subnets",
)


@dataclass(frozen=True)
class DiscoveryConfig:
    enabled: bool = False
    subnets: tuple[str, ...] = ()  # empty: the attached subnets
    # Subnets behind a router, swept by ICMP echo and TCP probes (never by default).
    routed_subnets: tuple[str, ...] = ()
    ports: tuple[int, ...] = DEFAULT_PORTS
    packets_per_second: int = DEFAULT_PPS
    max_hosts: int = DEFAULT_MAX_HOSTS
    allow_public: bool = False
    timeout_seconds: float = 1.0  # wait for answers after each pass
    interval_seconds: float = DEFAULT_INTERVAL  # between sweeps (agent/discovery/schedule.py)


def parse_ports(text: str) -> tuple[int, ...]:
    """ "22,80,8000-8010" -> sorted unique ports; DiscoveryConfigError when invalid."""
    ports: set[int] = set()
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        low, _, high = part.partition("-")
        try:
            first, last = int(low), int(high or low)
        except ValueError as e:
            raise DiscoveryConfigError(f"not a port or range: {part!r}") from e
        if not 1 <= first <= last <= 65535:
            raise DiscoveryConfigError(f"ports must be 1-65535 and ranges ascending: {part!r}")
        ports.update(range(first, last + 1))
    if not ports:
        raise DiscoveryConfigError("no port given")
    if len(ports) > MAX_PORTS:
        raise DiscoveryConfigError(f"at most {MAX_PORTS} ports per scan, got {len(ports)}")
    return tuple(sorted(ports))


def parse_discovery(
    raw: Mapping[Any, Any] | None, where: str = "agent.discovery"
) -> DiscoveryConfig:
    if raw is None:
        return DiscoveryConfig()
    if not isinstance(raw, Mapping):
        raise DiscoveryConfigError(f"{where} must be a mapping")
    problems: list[str] = []
    unknown = sorted(str(k) for k in raw if k not in KEYS)
    if unknown:
        problems.append(f"{where}: unknown key(s) {', '.join(unknown)} (known: {', '.join(KEYS)})")

    def flag(key: str) -> bool:
        value = raw.get(key, False)
        if not isinstance(value, bool):
            problems.append(f"{where}.{key} must be true or false")
            return False
        return value

    def positive(key: str, default: float, *, integer: bool) -> float:
        value = raw.get(key, default)
        kinds = int if integer else int | float
        if isinstance(value, bool) or not isinstance(value, kinds) or value <= 0:
            problems.append(
                f"{where}.{key} must be a positive {'integer' if integer else 'number'}"
            )
            return default
        return float(value)

    subnets = raw.get("subnets", [])
    if not isinstance(subnets, list) or not all(isinstance(s, str) and s for s in subnets):
        problems.append(f"{where}.subnets must be a list of CIDR strings")
        subnets = []
    routed = raw.get("routed_subnets", [])
    if not isinstance(routed, list) or not all(isinstance(s, str) and s for s in routed):
        problems.append(f"{where}.routed_subnets must be a list of CIDR strings")
        routed = []
    ports = DEFAULT_PORTS
    if raw.get("ports") is not None:
        value = raw["ports"]
        text = ",".join(str(v) for v in value) if isinstance(value, list) else str(value)
        try:
            ports = parse_ports(text)
        except DiscoveryConfigError as e:
            problems.append(f"{where}.ports: {e}")
    config = DiscoveryConfig(
        enabled=flag("enabled"),
        subnets=tuple(s.strip() for s in subnets),
        routed_subnets=tuple(s.strip() for s in routed),
        ports=ports,
        packets_per_second=int(positive("packets_per_second", DEFAULT_PPS, integer=True)),
        max_hosts=int(positive("max_hosts", DEFAULT_MAX_HOSTS, integer=True)),
        allow_public=flag("allow_public"),
        timeout_seconds=positive("timeout_seconds", 1.0, integer=False),
        interval_seconds=positive("interval_seconds", DEFAULT_INTERVAL, integer=False),
    )
    if config.interval_seconds < MIN_INTERVAL:
        problems.append(f"{where}.interval_seconds must be at least {MIN_INTERVAL:g}")
    if problems:
        raise DiscoveryConfigError("; ".join(problems), tuple(problems))
    return config
