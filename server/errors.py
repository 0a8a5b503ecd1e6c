"""Exceptions of the collector; every one derives from `ServerError`.

`IngestError` and its subclasses carry what the HTTP layer needs (status, a stable
machine-readable code, a message and optionally the offending field), so the ingest
core stays free of FastAPI and the API maps every refusal the same way.
"""

from __future__ import annotations

from typing import Any, ClassVar


class ServerError(Exception):
    """Base of every error raised by the server package."""


class ConfigError(ServerError):
    """The configuration file or a flag is invalid."""


class InvalidArgumentError(ServerError):
    """A value given to a command (agency id, token id...) is invalid."""


class DatabaseError(ServerError):
    """The database cannot be opened, migrated or reached, or a statement failed.

    `server.storage.database` raises it from SQLAlchemy's exceptions (the original is
    its `__cause__`), so no layer above storage handles `sqlalchemy.exc` itself.
    """


class ConstraintViolation(DatabaseError):  # noqa: N818 - named after what happened
    """A write broke a unique or foreign-key constraint: often a concurrent writer
    (another replica) stored the same row first, which the caller may check."""


class IngestError(ServerError):
    """A request was refused with a 4xx; nothing was stored.

    (Named for the ingest path where it started; enrolment and the read API use it too.)
    """

    status: ClassVar[int] = 400

    def __init__(self, code: str, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.field = field

    def to_body(self) -> dict[str, Any]:
        """The JSON body of the HTTP answer: `{"error": {"code", "message", "field"?}}`."""
        return error_body(self.code, self.message, self.field)


def error_body(code: str, message: str, field: str | None = None) -> dict[str, Any]:
    """The one shape of every error answer: `{"error": {"code", "message", "field"?}}`
    (`field` only when there is one)."""
    error: dict[str, Any] = {"code": code, "message": message}
    if field is not None:
        error["field"] = field
    return {"error": error}


class BadRequestError(IngestError):
    """The body is not a JSON object (bad UTF-8, bad JSON, too deep, bad gzip)."""

    status = 400


class UnauthorizedError(IngestError):
    """No usable bearer token (missing, malformed, unknown or revoked)."""

    status = 401


class ForbiddenError(IngestError):
    """A valid token that may not report for this agent."""

    status = 403


class ConflictError(IngestError):
    """The request conflicts with the stored state (for example: already enrolled)."""

    status = 409


class NotFoundError(IngestError):
    """The named resource does not exist."""

    status = 404


class TooManyRequestsError(IngestError):
    """The agent exceeded its rate limit; `retry_after` says when to come back."""

    status = 429

    def __init__(self, code: str, message: str, retry_after: float) -> None:
        super().__init__(code, message)
        self.retry_after = retry_after


class PayloadTooLargeError(IngestError):
    """The body, compressed or decompressed, exceeds a configured limit."""

    status = 413


class UnsupportedEncodingError(IngestError):
    """A Content-Encoding other than identity or gzip."""

    status = 415


class UnprocessableError(IngestError):
    """Well-formed JSON that is not a valid facts document."""

    status = 422
