"""Discovery's failures, all `agent.errors.AgentError` subclasses."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from agent.errors import AgentError, ConfigError


class DiscoveryError(AgentError):
    """A scan could not be run (no scapy, no permission, a socket failure)."""


class DiscoveryConfigError(ConfigError):
    """The `agent.discovery` section or a `discover` option is invalid; `problems` has
    each problem with its key's path (`config check` prints one per line)."""

    def __init__(self, message: str, problems: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.problems = problems or (message,)


class RefusalKind(StrEnum):
    """Why a subnet may not be probed: the CLI words each kind in each language."""

    NOT_CIDR = "not_cidr"
    IPV6 = "ipv6"
    SPECIAL = "special"  # loopback, multicast or unspecified
    PUBLIC = "public"
    TOO_LARGE = "too_large"  # with size and max_hosts
    NOT_ATTACHED = "not_attached"
    ATTACHED_ROUTED = "attached_routed"  # a routed_subnets entry that is attached
    NO_ATTACHED = "no_attached"  # nothing to sweep by default


@dataclass(frozen=True)
class Refusal:
    subnet: str  # as given, or the parsed network; "" for NO_ATTACHED
    kind: RefusalKind
    english: str  # the reason in English (the exception's message, config check)
    size: int = 0  # TOO_LARGE: the subnet's host addresses
    max_hosts: int = 0  # TOO_LARGE: the configured limit

    def __str__(self) -> str:
        return f"{self.subnet}: {self.english}" if self.subnet else self.english


class SubnetRefusedError(DiscoveryConfigError):
    """A subnet may not be probed (public, too large, not attached): a usage error;
    `refusals` has each refused subnet with its kind."""

    def __init__(self, refusals: tuple[Refusal, ...]) -> None:
        super().__init__("; ".join(str(r) for r in refusals))
        self.refusals = refusals
