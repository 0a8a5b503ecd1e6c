"""Discovery's failures, all `agent.errors.AgentError` subclasses."""

from __future__ import annotations

from agent.errors import AgentError, ConfigError


class DiscoveryError(AgentError):
    """A scan could not be run (no scapy, no permission, a socket failure)."""


class DiscoveryConfigError(ConfigError):
    """The `agent.discovery` section or a `discover` option is invalid; `problems` has
    each problem with its key's path (`config check` prints one per line)."""

    def __init__(self, message: str, problems: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.problems = problems or (message,)


class SubnetRefusedError(DiscoveryConfigError):
    """A subnet may not be probed (public, too large, not attached): a usage error."""
