"""The HTTP API (FastAPI), kept thin: it authenticates, reads the body within limits,
hands the bytes to the ingest core off the event loop, and maps refusals to JSON.

Routes: `POST /api/v1/reports`, `GET /healthz`, `GET /metrics`.
Every refusal has the body `{"error": {"code", "message", "field"?}}`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect

from rules.model import RuleSet
from server import version
from server.clock import Clock, utc_now
from server.config import ServerConfig
from server.db import Database
from server.errors import (
    BadRequestError,
    DatabaseError,
    IngestError,
    PayloadTooLargeError,
    UnauthorizedError,
)
from server.ingest import IngestService, limits_of
from server.metrics import IngestMetrics, build_registry, outcome_for_status
from server.state import HostStateCache

log = logging.getLogger(__name__)

REPORTS_PATH = "/api/v1/reports"
RETRY_AFTER_SECONDS = 30


def create_app(
    config: ServerConfig,
    database: Database,
    ruleset: RuleSet,
    *,
    cache: HostStateCache | None = None,
    clock: Clock = utc_now,
) -> FastAPI:
    """The collector's ASGI app; its dependencies are arguments so tests swap them."""
    host_cache = cache if cache is not None else HostStateCache()
    registry, ingest_metrics = build_registry(host_cache, version())
    service = IngestService(
        database,
        ruleset,
        limits_of(config),
        weights=config.weights,
        clock=clock,
        on_commit=host_cache.put,
    )

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        await run_in_threadpool(host_cache.refresh, database)
        refresher = asyncio.create_task(
            _refresh_forever(host_cache, database, config.metrics_refresh_seconds)
        )
        try:
            yield
        finally:
            refresher.cancel()
            with suppress(asyncio.CancelledError):
                await refresher

    # No interactive docs: the API has one client, the agent, and less surface is better.
    app = FastAPI(
        title="canhgac collector",
        version=version(),
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
        lifespan=lifespan,
    )

    @app.exception_handler(Exception)
    async def internal_error(_request: Request, _error: Exception) -> Response:
        # Starlette logs the exception itself; the client gets no internals.
        return JSONResponse(
            {"error": {"code": "internal", "message": "internal error"}},
            status_code=500,
        )

    @app.post(REPORTS_PATH)
    async def post_report(request: Request) -> Response:
        return await _post_report(request, service, ingest_metrics)

    @app.get("/healthz")
    async def healthz() -> Response:
        try:
            await run_in_threadpool(database.ping)
        except DatabaseError as e:
            log.warning("health check failed: %s", e)
            return JSONResponse({"status": "unavailable"}, status_code=503)
        return JSONResponse({"status": "ok"})

    @app.get("/metrics")
    async def metrics() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    return app


async def _post_report(
    request: Request, service: IngestService, ingest_metrics: IngestMetrics
) -> Response:
    try:
        presented = bearer_token(request.headers.get("authorization"))
        credential = await run_in_threadpool(service.authenticate, presented)
        body = await read_body_capped(request, service.limits.max_body_bytes)
        result = await run_in_threadpool(
            service.ingest, credential, body, request.headers.get("content-encoding")
        )
    except IngestError as e:
        ingest_metrics.count(outcome_for_status(e.status))
        return error_response(e)
    except DatabaseError:
        log.exception("report not stored")
        ingest_metrics.count("unavailable")
        return JSONResponse(
            {"error": {"code": "unavailable", "message": "the database is unavailable"}},
            status_code=503,
            headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
        )
    except Exception:
        # Counted, then left to the app's handler (JSON 500) and the server's log.
        ingest_metrics.count("error")
        raise
    ingest_metrics.count(result.status)
    return JSONResponse(result.to_body())


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


def error_response(error: IngestError) -> JSONResponse:
    headers: dict[str, Any] = {}
    if isinstance(error, UnauthorizedError):
        # RFC 6750: tell the client which scheme, and whether its token was bad.
        challenge = 'Bearer realm="canhgac"'
        if error.code == "invalid_token":
            challenge += ', error="invalid_token"'
        headers["WWW-Authenticate"] = challenge
    return JSONResponse(error.to_body(), status_code=error.status, headers=headers)


async def _refresh_forever(cache: HostStateCache, database: Database, seconds: float) -> None:
    """Reload host state from the database so replicas converge on each other's writes."""
    while True:
        await asyncio.sleep(seconds)
        try:
            await run_in_threadpool(cache.refresh, database)
        except DatabaseError as e:
            # Keep serving the last known state; the next period tries again.
            log.warning("host state refresh failed: %s", e)
