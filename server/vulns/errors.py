"""The vulnerability layer's errors: one base, a subclass of the collector's."""

from __future__ import annotations

from server.errors import ServerError


class VulnDbError(ServerError):
    """A feed file or store that cannot be used; the message says which and why."""
