"""The read API (viewer role) under /api/v1; admin routes are in `admin.py`.

Every answer comes from the database, so replicas behind a load balancer agree.
Agent tokens (`cgt_`) are refused here: only API tokens (`cga_`) read.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, Literal, TypeVar

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, Response
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from server.api.common import Runtime, api_credential, error_response, unavailable
from server.errors import DatabaseError, IngestError, NotFoundError
from server.read import queries

T = TypeVar("T")
Severity = Literal["critical", "high", "medium", "low", "info"]
FindingStatus = Literal["open", "waived", "resolved"]


def read_router(runtime: Runtime) -> APIRouter:
    router = APIRouter(prefix="/api/v1", tags=["read"])

    def stale_before() -> datetime:
        return runtime.clock() - timedelta(seconds=runtime.config.stale_after_seconds)

    async def answer(request: Request, role: str, work: Callable[[Session], T]) -> Response:
        return await answer_with(runtime, request, role, work)

    @router.get("/hosts", summary="Hosts, filtered and paginated")
    async def hosts(
        request: Request,
        *,
        agency: str | None = None,
        os: str | None = Query(None, description="substring of the OS name"),
        stale: bool | None = None,
        limit: int = Query(100, ge=1, le=1000),
        offset: int = Query(0, ge=0, le=1_000_000_000),
    ) -> Response:
        page = queries.Page(limit, offset)
        return await answer(
            request,
            "viewer",
            lambda s: queries.list_hosts(
                s, stale_before(), page, agency=agency, os=os, stale=stale
            ),
        )

    @router.get("/hosts/{agent_id}", summary="One host: latest facts, findings, score history")
    async def host(request: Request, agent_id: str) -> Response:
        def work(session: Session) -> dict[str, Any]:
            detail = queries.host_detail(session, agent_id, stale_before())
            if detail is None:
                raise NotFoundError("not_found", f"no host with agent id {agent_id!r}")
            return detail

        return await answer(request, "viewer", work)

    @router.get("/findings", summary="Findings, filtered and paginated")
    async def findings(
        request: Request,
        *,
        agency: str | None = None,
        rule: str | None = None,
        severity: Severity | None = None,
        status: FindingStatus | None = None,
        min_age_days: float | None = Query(None, ge=0, le=36500),
        agent_id: str | None = None,
        limit: int = Query(100, ge=1, le=1000),
        offset: int = Query(0, ge=0, le=1_000_000_000),
    ) -> Response:
        page = queries.Page(limit, offset)
        return await answer(
            request,
            "viewer",
            lambda s: queries.list_findings(
                s,
                runtime.clock(),
                page,
                agency=agency,
                rule=rule,
                severity=severity,
                status=status,
                min_age_days=min_age_days,
                agent_id=agent_id,
            ),
        )

    @router.get("/agencies", summary="Agencies ranked by score (pooled over their hosts)")
    async def agencies(request: Request) -> Response:
        weights = runtime.policy.weights
        return await answer(
            request,
            "viewer",
            lambda s: {"items": queries.agencies_ranked(s, weights, stale_before())},
        )

    @router.get("/scores/hosts/{agent_id}", summary="A host's score and its history")
    async def host_score(request: Request, agent_id: str) -> Response:
        def work(session: Session) -> dict[str, Any]:
            detail = queries.host_detail(session, agent_id, stale_before())
            if detail is None:
                raise NotFoundError("not_found", f"no host with agent id {agent_id!r}")
            keys = ("agent_id", "agency", "label", "score", "stale", "score_history")
            return {key: detail[key] for key in keys}

        return await answer(request, "viewer", work)

    @router.get("/scores/agencies/{agency_id}", summary="An agency's score")
    async def agency_score(request: Request, agency_id: str) -> Response:
        weights = runtime.policy.weights

        def work(session: Session) -> dict[str, Any]:
            for entry in queries.agencies_ranked(session, weights, stale_before()):
                if entry["agency"] == agency_id:
                    return entry
            raise NotFoundError("not_found", f"no agency {agency_id!r}")

        return await answer(request, "viewer", work)

    @router.get(
        "/scores/frameworks/{framework_id}",
        summary="Per requirement of a framework: pooled score of its rules",
    )
    async def framework_scores(
        request: Request, framework_id: str, agency: str | None = None
    ) -> Response:
        policy = runtime.policy

        def work(session: Session) -> dict[str, Any]:
            items = queries.requirement_scores(
                session, policy.frameworks, framework_id, policy.weights, agency
            )
            if items is None:
                raise NotFoundError("not_found", f"no framework {framework_id!r} is loaded")
            return {"framework": framework_id, "agency": agency, "requirements": items}

        return await answer(request, "viewer", work)

    @router.get("/remediation", summary="Time to remediate findings, by agency or by rule")
    async def remediation(request: Request, by: Literal["agency", "rule"] = "agency") -> Response:
        return await answer(
            request,
            "viewer",
            lambda s: {"by": by, "items": queries.remediation_times(s, by, runtime.clock())},
        )

    return router


async def answer_with(
    runtime: Runtime, request: Request, role: str, work: Callable[[Session], T]
) -> Response:
    """Check the API token's role, run `work` in a session off the loop, answer JSON."""
    try:
        await api_credential(runtime, request, role)
        result = await run_in_threadpool(_in_session, runtime, work, role == "admin")
    except IngestError as e:
        return error_response(e)
    except DatabaseError:
        return unavailable()
    return JSONResponse(result)


def _in_session(runtime: Runtime, work: Callable[[Session], T], write: bool) -> T:
    """Reads in a read session (no write lock on SQLite); admin changes in a write one."""
    try:
        if write:
            with runtime.database.write() as session:
                return work(session)
        with runtime.database.session() as session:
            return work(session)
    except SQLAlchemyError as e:
        raise DatabaseError(f"database error: {e}") from e
