"""Shared pieces of the HTTP layer: bearer parsing, capped body reads, error bodies,
and the `Runtime` every router reads its dependencies from."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect

from server.auth.agent_tokens import AGENCY_ID_PATTERN
from server.auth.api_tokens import ApiCredential, authenticate_api_token
from server.clock import Clock
from server.config import ServerConfig
from server.errors import (
    BadRequestError,
    ForbiddenError,
    IngestError,
    PayloadTooLargeError,
    TooManyRequestsError,
    UnauthorizedError,
    error_body,
)
from server.evaluation.loaded_policy import ServerPolicy
from server.evaluation.reeval import Reevaluator
from server.ingest.service import IngestService
from server.metrics.exporter import IngestMetrics
from server.metrics.hoststate import HostStateCache
from server.storage.database import Database

# Query filters: an agency id as enrolment makes them, and bounded printable text. A
# NUL byte reaches PostgreSQL as an error the driver reports like an outage (503);
# refusing it here gives the client the precise 422 instead.
AGENCY_FILTER = "^" + AGENCY_ID_PATTERN + "$"
TEXT_FILTER = r"^[^\x00-\x1f\x7f]{1,200}$"

RETRY_AFTER_SECONDS = 30
MAX_SMALL_BODY = 64 * 1024  # enrolment and admin requests


@dataclass
class Runtime:
    config: ServerConfig
    database: Database
    service: IngestService
    cache: HostStateCache
    reevaluator: Reevaluator
    clock: Clock
    ingest_metrics: IngestMetrics
    policy_loader: Callable[[], ServerPolicy] | None = None
    policy_files: tuple[tuple[str, int, int], ...] = ()  # (path, mtime_ns, size) last seen

    @property
    def policy(self) -> ServerPolicy:
        return self.service.policy


def bearer_token(authorization: str | None) -> str | None:
    """The token of an `Authorization: Bearer <token>` header; None when absent."""
    if authorization is None:
        return None
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise UnauthorizedError(
            "invalid_token", "the Authorization header must be 'Bearer <token>'"
        )
    return token.strip()


async def read_body_capped(request: Request, limit: int) -> bytes:
    """The request body, refused (413) as soon as it exceeds `limit` bytes.

    Content-Length is checked before reading anything; a chunked body is counted as
    it streams in, so an oversized one is never buffered in full.
    """
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.strip().isdigit():
            raise BadRequestError("invalid_content_length", "Content-Length is not a number")
        if int(declared) > limit:
            raise PayloadTooLargeError("body_too_large", f"the body exceeds {limit} bytes")
    body = bytearray()
    try:
        async for chunk in request.stream():
            body += chunk
            if len(body) > limit:
                raise PayloadTooLargeError("body_too_large", f"the body exceeds {limit} bytes")
    except ClientDisconnect as e:
        # Nobody will read the answer; this only keeps the outcome counted right.
        raise BadRequestError("client_disconnected", "the client went away mid-body") from e
    return bytes(body)


async def read_small_json(request: Request) -> Any:
    body = await read_body_capped(request, MAX_SMALL_BODY)
    try:
        return json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as e:
        raise BadRequestError("invalid_json", f"the body is not valid JSON: {e}") from e


def error_response(error: IngestError) -> JSONResponse:
    headers: dict[str, Any] = {}
    if isinstance(error, UnauthorizedError):
        # RFC 6750: tell the client which scheme, and whether its token was bad.
        challenge = 'Bearer realm="canhgac"'
        if error.code == "invalid_token":
            challenge += ', error="invalid_token"'
        headers["WWW-Authenticate"] = challenge
    if isinstance(error, TooManyRequestsError):
        headers["Retry-After"] = str(max(1, round(error.retry_after)))
    return JSONResponse(error.to_body(), status_code=error.status, headers=headers)


def unavailable() -> JSONResponse:
    return JSONResponse(
        error_body("unavailable", "the database is unavailable"),
        status_code=503,
        headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
    )


async def api_credential(runtime: Runtime, request: Request, role: str) -> ApiCredential:
    """The API token's credential, refused unless its role covers `role`."""
    presented = bearer_token(request.headers.get("authorization"))

    credential = await run_in_threadpool(authenticate_api_token, runtime.database, presented)
    if not credential.allows(role):
        raise ForbiddenError("insufficient_role", f"this needs an API token with role {role}")
    return credential
