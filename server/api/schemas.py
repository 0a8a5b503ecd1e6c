"""The shapes of the HTTP answers that are not read-side views (those are in
`server.read.views`): agents' answers, admin answers, health and the error body.

Every route declares its success model and its error statuses (`error_responses`),
so the OpenAPI document at /api/v1/openapi.json describes every answer.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class Answer(BaseModel):
    """Base of the answer models: exactly the keys the core builds."""

    model_config = ConfigDict(extra="forbid")


class ErrorDetail(Answer):
    code: str = Field(description="stable, machine-readable (e.g. invalid_token, not_found)")
    message: str = Field(description="for a person; may change between versions")
    field: str | None = Field(
        None, description="the offending field or parameter, when there is one"
    )


class ErrorBody(Answer):
    """Every refusal and failure: `{"error": {"code", "message", "field"?}}`."""

    error: ErrorDetail


class ReportAnswer(Answer):
    """The answer to a delivered report; score, failing and applied only when accepted."""

    status: Literal["accepted", "duplicate"]
    report_id: str
    duplicate: bool
    score: float | None = Field(None, description="the host's score with this report")
    failing: int | None = Field(None, description="failing rules in this report")
    applied: bool | None = Field(
        None, description="whether the report became the host's current state"
    )
    dropped_keys: int | None = Field(
        None,
        description="keys of the report that this collector's schema does not define:"
        " dropped, not stored (a newer agent's fields, or junk)",
    )


class EnrolAnswer(Answer):
    """An enrolled agent's token: shown once, never stored in clear."""

    agency: str
    agent_id: str
    token_id: str
    token: str


class AgencyAnswer(Answer):
    id: str
    name: str


class RevokeAnswer(Answer):
    agent_id: str
    revoked_tokens: list[str] = Field(description="ids of the tokens revoked")


class Health(Answer):
    status: Literal["ok", "unavailable"]


_ERROR_DESCRIPTIONS = {
    400: "malformed request (bad JSON, bad Content-Length...)",
    401: "missing, malformed, unknown or revoked token",
    403: "the token may not do this",
    404: "no such resource",
    409: "conflicts with the stored state",
    413: "body, decompressed body or a list too large",
    415: "unsupported Content-Encoding",
    422: "invalid parameters or body",
    429: "rate limited (see Retry-After)",
    500: "internal error (details only in the server's log)",
    503: "the database is unavailable (see Retry-After)",
}


def error_responses(*statuses: int, **descriptions: str) -> dict[int | str, dict[str, Any]]:
    """The `responses=` of a route: each status with the error body model, plus 500
    (any route may fail). `descriptions` overrides a status's description, keyed
    `s<status>` (`s401="..."`)."""
    answer: dict[int | str, dict[str, Any]] = {}
    for status in sorted({*statuses, 500}):
        description = descriptions.get(f"s{status}", _ERROR_DESCRIPTIONS[status])
        answer[status] = {"model": ErrorBody, "description": description}
    return answer
