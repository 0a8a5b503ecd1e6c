"""`create_app`: wires the core, the routers and the background tasks of one replica.

Background work of each replica (all safe with several replicas):
- refresh the in-memory host state from the database (metrics converge);
- check the policy files; on change (or SIGHUP) reload them and re-evaluate every
  host's latest facts (one replica at a time, under the lease in `server.evaluation.reeval`);
- apply the facts retention hourly (`server.storage.retention`, idempotent).
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, suppress

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.concurrency import run_in_threadpool

from rules.errors import RuleLoadError
from rules.language.loader import expand_paths
from server import version
from server.api.admin_routes import admin_router
from server.api.agent_routes import agent_router
from server.api.common import Runtime
from server.api.read_routes import read_router
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
from server.storage.retention import prune

log = logging.getLogger(__name__)


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
    reload_requested = asyncio.Event()

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        await run_in_threadpool(host_cache.refresh, database)
        with suppress(ValueError, RuntimeError, NotImplementedError):
            # Only possible in the main thread (tests run uvicorn in another one).
            asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, reload_requested.set)
        tasks = [
            asyncio.create_task(
                _refresh_forever(host_cache, database, config.metrics_refresh_seconds)
            ),
            asyncio.create_task(_policy_forever(runtime, reload_requested)),
            asyncio.create_task(_prune_forever(runtime)),
        ]
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with suppress(asyncio.CancelledError):
                    await task

    app = FastAPI(
        title="canhgac collector",
        version=version(),
        description="Agents enrol and report; API tokens read hosts, findings and scores.",
        docs_url=None,
        redoc_url=None,
        openapi_url="/api/v1/openapi.json",
        lifespan=lifespan,
    )

    @app.exception_handler(Exception)
    async def internal_error(_request: Request, _error: Exception) -> Response:
        # Starlette logs the exception itself; the client gets no internals.
        return JSONResponse(
            {"error": {"code": "internal", "message": "internal error"}},
            status_code=500,
        )

    app.include_router(agent_router(runtime))
    app.include_router(read_router(runtime))
    app.include_router(admin_router(runtime))

    @app.get("/healthz", tags=["operations"])
    async def healthz() -> Response:
        try:
            await run_in_threadpool(database.ping)
        except DatabaseError as e:
            log.warning("health check failed: %s", e)
            return JSONResponse({"status": "unavailable"}, status_code=503)
        return JSONResponse({"status": "ok"})

    @app.get("/metrics", tags=["operations"])
    async def metrics() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    app.state.runtime = runtime
    return app


async def _refresh_forever(cache: HostStateCache, database: Database, seconds: float) -> None:
    """Reload host state from the database so replicas converge on each other's writes."""
    while True:
        await asyncio.sleep(seconds)
        try:
            await run_in_threadpool(cache.refresh, database)
        except DatabaseError as e:
            # Keep serving the last known state; the next period tries again.
            log.warning("host state refresh failed: %s", e)
        except Exception:
            # A background loop that dies is a replica that silently stops converging.
            log.exception("host state refresh failed unexpectedly; retrying next period")


PRUNE_EVERY_SECONDS = 3600.0


def policy_files_signature(config: ServerConfig) -> tuple[tuple[str, int, int], ...]:
    paths = [*config.rule_paths(), *config.waivers, *config.scopes, *(config.frameworks or ())]
    signature = []
    for path in expand_paths(paths):
        try:
            stat = path.stat()
        except OSError:
            signature.append((str(path), -1, -1))
            continue
        signature.append((str(path), stat.st_mtime_ns, stat.st_size))
    return tuple(signature)


async def _prune_forever(runtime: Runtime) -> None:
    """Apply the retention hourly (idempotent: replicas may all do it)."""
    while True:
        await asyncio.sleep(PRUNE_EVERY_SECONDS)
        try:
            pruned = await run_in_threadpool(
                prune, runtime.database, runtime.clock(), runtime.config.retention_days
            )
        except DatabaseError as e:
            log.warning("retention failed: %s", e)
            continue
        except Exception:
            log.exception("retention failed unexpectedly; retrying next period")
            continue
        if pruned.reports or pruned.blobs:
            log.info("retention: deleted %d reports, %d blobs", pruned.reports, pruned.blobs)


async def _policy_forever(runtime: Runtime, reload_requested: asyncio.Event) -> None:
    """Re-evaluate at start when needed; then on SIGHUP or every policy_check_seconds,
    reload the policy (if a loader was given) and re-evaluate when it changed."""
    forced = False
    while True:
        try:
            await run_in_threadpool(reload_and_reevaluate, runtime, forced)
        except (DatabaseError, RuleLoadError) as e:
            log.warning("policy reload / re-evaluation failed: %s", e)
        except Exception:
            log.exception("policy reload / re-evaluation failed unexpectedly; retrying")
        forced = False
        with suppress(TimeoutError):
            await asyncio.wait_for(reload_requested.wait(), runtime.config.policy_check_seconds)
            forced = True
        reload_requested.clear()


def reload_and_reevaluate(runtime: Runtime, force: bool = True) -> int:
    """Reload the policy from its files (when forced, or when a file's size or mtime
    changed: cheap enough to check every minute); re-evaluate the hosts that are not
    at its fingerprint. Returns how many hosts this replica re-evaluated."""
    signature = policy_files_signature(runtime.config)
    changed = signature != runtime.policy_files
    runtime.policy_files = signature
    if runtime.policy_loader is not None and (force or changed):
        loaded = runtime.policy_loader()
        if loaded.fingerprint != runtime.service.policy.fingerprint:
            log.info(
                "policy changed: %d rules, fingerprint %s",
                len(loaded.ruleset.rules),
                loaded.fingerprint[:12],
            )
            runtime.service.policy = loaded
    policy = runtime.service.policy
    if not runtime.reevaluator.pending(policy):
        return 0
    outcome = runtime.reevaluator.run(policy)
    if outcome.hosts:
        log.info("re-evaluated %d hosts with policy %s", outcome.hosts, policy.fingerprint[:12])
        runtime.cache.refresh(runtime.database)
    return outcome.hosts
