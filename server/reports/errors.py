"""`ReportError`: an audit document could not be produced (a missing tool, a failure)."""

from __future__ import annotations

from server.errors import ServerError


class ReportError(ServerError):
    """The document could not be rendered; the message says why and what to install."""
