"""`create_app`: wires the core, the routers and the error handlers of one replica,
and runs the replica's background work (`server.background`) for the app's lifetime.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.concurrency import run_in_threadpool

from server import version
from server.api.admin_routes import admin_router
from server.api.agent_routes import REPORTS_PATH, agent_router
from server.api.audit_routes import audit_router
from server.api.common import Runtime
from server.api.error_handlers import install_error_handlers
from server.api.lan_routes import lan_router
from server.api.read_routes import read_router
from server.api.readiness import readiness_router
from server.api.schemas import Health, error_responses
from server.api.vulnerability_routes import vulnerability_router
from server.background import policy_files_signature, replica_background
from server.clock import Clock, utc_now
from server.config import ServerConfig
from server.errors import DatabaseError
from server.evaluation.loaded_policy import ServerPolicy
from server.evaluation.reeval import Reevaluator
from server.ingest.ratelimit import RateLimiter
from server.ingest.service import IngestService, limits_of
from server.metrics.access import MetricsAccess
from server.metrics.exporter import build_registry
from server.metrics.hoststate import HostStateCache
from server.metrics.vulnerabilities import VulnerabilityMetrics, vulnerability_refresh
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
    exporter, ingest_metrics = build_registry(
        host_cache,
        version(),
        config.stale_after_seconds,
        clock,
        rules=lambda: service.policy.ruleset.rules,  # the policy now, after any reload
        frameworks=lambda: service.policy.frameworks,
        weights=lambda: service.policy.weights,
        scopes=lambda: service.policy.policy.scopes,  # security levels of hosts
        rule_failing_cap=config.metrics_rule_failing_max_series,
        cert_cap=config.metrics_cert_max_series,
    )
    # Counted in the background, from the policy's feed store as of now (after reloads).
    vuln_metrics = VulnerabilityMetrics(database, lambda: service.policy.vulns, host_cache, clock)
    exporter.registry.register(vuln_metrics)
    metrics_access = MetricsAccess(
        config.metrics_bearer_sha256,
        config.metrics_basic_user,
        config.metrics_basic_password_sha256,
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
        refresh = max(config.metrics_refresh_seconds * 4, 1.0)  # matching costs more
        async with replica_background(runtime), vulnerability_refresh(vuln_metrics, refresh):
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

    @app.middleware("http")
    async def time_ingest(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        if request.method != "POST" or request.url.path != REPORTS_PATH:
            return await call_next(request)
        started = time.perf_counter()
        try:
            return await call_next(request)
        finally:
            ingest_metrics.latency.observe(time.perf_counter() - started)

    app.include_router(agent_router(runtime))
    app.include_router(read_router(runtime))
    app.include_router(vulnerability_router(runtime))
    app.include_router(audit_router(runtime))
    app.include_router(lan_router(runtime))
    app.include_router(admin_router(runtime))
    app.include_router(readiness_router(runtime))

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
        responses=error_responses(401),
    )
    async def metrics(request: Request) -> Response:
        if not metrics_access.allows(request.headers.get("authorization")):
            return JSONResponse(
                {
                    "error": {
                        "code": "metrics_unauthorized",
                        "message": "/metrics needs the configured credentials",
                        "field": None,
                    }
                },
                status_code=401,
                headers={"WWW-Authenticate": metrics_access.challenge},
            )
        # Rendering is CPU work proportional to the fleet: never on the event loop.
        return PrometheusResponse(await run_in_threadpool(exporter.render))

    app.state.runtime = runtime
    return app
