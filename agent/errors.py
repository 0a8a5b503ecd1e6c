"""Exceptions of the agent layer; every one derives from `AgentError`.

The CLI turns an `AgentError` into a one-line message and a non-zero exit code, so
messages must make sense to an administrator without a traceback.
"""

from __future__ import annotations


class AgentError(Exception):
    """Base of every error raised by the agent package."""


class ConfigError(AgentError):
    """The configuration file or a command-line value is invalid."""


class StateError(AgentError):
    """The agent's state directory or state file cannot be used."""


class CommandError(AgentError):
    """An external command could not be run."""


class CommandNotFound(CommandError):  # noqa: N818 - name fixed by the runner contract
    """The program of a command does not exist on this host."""


class CommandTimeout(CommandError):  # noqa: N818 - name fixed by the runner contract
    """A command did not finish within its timeout (it has been killed)."""


class ShippingError(AgentError):
    """A report could not be delivered to the collector.

    `reason` says which step failed ("tls", "unreachable", "rejected", "unexpected") so
    the CLI can frame the message in the administrator's language; `url` and `detail`
    (the low-level cause, as the library or server worded it) fill it in.
    `status` is the HTTP status when the server answered, None when it could not be
    reached; `code`, `server_message` and `field` come from the server's JSON error body
    (`{"error": {"code", "message", "field"?}}`) when it sent one.
    """

    def __init__(
        self,
        message: str,
        *,
        reason: str = "unexpected",
        url: str = "",
        detail: str = "",
        status: int | None = None,
        code: str | None = None,
        server_message: str | None = None,
        field: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.reason = reason
        self.url = url
        self.detail = detail
        self.status = status
        self.code = code
        self.server_message = server_message
        self.field = field
        # Seconds the collector asked the agent to wait (429/503 Retry-After), or None.
        self.retry_after = retry_after
