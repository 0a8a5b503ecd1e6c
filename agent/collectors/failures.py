"""How a collector says it failed, wholly or in part: the error kinds of the schema's
`collector_error`, the exception that costs a domain, and the issue that keeps it.

A module of its own, importing nothing from the collectors, because the system facade
(`system`) raises these too and `base` builds on that facade: with the types in `base`
the two modules would import each other.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from agent.errors import AgentError


class ErrorKind(StrEnum):
    """Why a collector produced nothing or only part of its domain (schema: collector_error)."""

    FAILED = "failed"
    TIMEOUT = "timeout"
    PERMISSION = "permission"
    UNSUPPORTED = "unsupported"
    SKIPPED = "skipped"


@dataclass(frozen=True)
class Issue:
    """A partial failure: the domain is still reported, with this entry in `errors`."""

    kind: ErrorKind
    reason: str


class CollectorError(AgentError):
    """A collector cannot produce its domain; becomes one `errors` entry of the document."""

    def __init__(self, kind: ErrorKind, reason: str) -> None:
        super().__init__(reason)
        self.kind = kind
        self.reason = reason

    @property
    def issue(self) -> Issue:
        """This error as a partial failure, for a collector that carries on without it."""
        return Issue(self.kind, self.reason)


class FileDeniedError(CollectorError):
    """A host file exists but may not be read (permissions, SELinux): never "absent"."""

    def __init__(self, path: str, error: OSError) -> None:
        super().__init__(ErrorKind.PERMISSION, f"{path}: {error.strerror or 'permission denied'}")
        self.path = path


class FileReadError(CollectorError):
    """A host file exists but reading it failed (an I/O error, a directory, ...)."""

    def __init__(self, path: str, error: OSError) -> None:
        super().__init__(ErrorKind.FAILED, f"{path}: {error.strerror or error}")
        self.path = path
