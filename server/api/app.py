"""`create_app`: wires the core, the routers and the error handlers of one replica,
and runs the replica's background work (`server.background`) for the app's lifetime.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.concurrency import run_in_threadpool

from server import version
from server.api.admin_routes import admin_router
from server.api.agent_routes import agent_router
from server.api.audit_routes import audit_router
from server.api.common import Runtime
from server.api.error_handlers import install_error_handlers
from server.api.read_routes import read_router
from server.api.schemas import Health, error_responses
from server.background import policy_files_signature, replica_background
from server.clock import Clock, utc_now
from server.config import ServerConfig
from server.errors import DatabaseError
from server.evaluation.loaded_policy import ServerPolicy
from server.evaluation.reeval import Reevaluator
from server.ingest.ratelimit import RateLimiter
from server.ingest.service import IngestService, limits_of
from server.metrics.exporter import build_registry
from server.metrics.hoststate import HostStateCache
from server.storage.database import Database

log = logging.getLogger(__name__)


class PrometheusResponse(Response):
    """The Prometheus text exposition format."""

    media_type = CONTENT_TYPE_LATEST


def create_app(
    config: ServerConfig,
    database: Database,
    policy: ServerPolicy,
    *,
    cache: HostStateCache | None = None,
    clock: Clock = utc_now,
    policy_loader: Callable[[], ServerPolicy] | None = None,
) -> FastAPI:
    """The collector's ASGI app; its dependencies are arguments so tests swap them.

    `policy_loader` reloads the policy from its files (SIGHUP, periodic check); without
    it the policy given stays for the app's lifetime.
    """
    host_cache = cache if cache is not None else HostStateCache()
    registry, ingest_metrics = build_registry(
        host_cache, version(), config.stale_after_seconds, clock
    )
    service = IngestService(
        database,
        policy,
        limits_of(config),
        clock=clock,
        on_commit=host_cache.put,
        rate_limiter=RateLimiter(config.agent_rate_per_minute, config.agent_rate_burst),
    )
    runtime = Runtime(
        config=config,
        database=database,
        service=service,
        cache=host_cache,
        reevaluator=Reevaluator(database, clock),
        clock=clock,
        ingest_metrics=ingest_metrics,
        policy_loader=policy_loader,
        policy_files=policy_files_signature(config),
    )

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        async with replica_background(runtime):
            yield

    app = FastAPI(
        title="canhgac collector",
        version=version(),
        description="Agents enrol and report; API tokens read hosts, findings and scores.",
        docs_url=None,
        redoc_url=None,
        openapi_url="/api/v1/openapi.json",
        lifespan=lifespan,
    )

    install_error_handlers(app)
    app.include_router(agent_router(runtime))
    app.include_router(read_router(runtime))
    app.include_router(audit_router(runtime))
    app.include_router(admin_router(runtime))

    @app.get(
        "/healthz",
        tags=["operations"],
        summary="Whether this replica can reach the database",
        response_model=Health,
        responses={
            **error_responses(),
            503: {"model": Health, "description": "the database is unavailable"},
        },
    )
    async def healthz() -> Health | Response:
        try:
            await run_in_threadpool(database.ping)
        except DatabaseError as e:
            log.warning("health check failed: %s", e)
            return JSONResponse({"status": "unavailable"}, status_code=503)
        return Health(status="ok")

    @app.get(
        "/metrics",
        tags=["operations"],
        summary="Prometheus metrics of this replica",
        response_class=PrometheusResponse,
        responses=error_responses(),
    )
    async def metrics() -> Response:
        return PrometheusResponse(generate_latest(registry))

    app.state.runtime = runtime
    return app
