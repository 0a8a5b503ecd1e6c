"""The read API (viewer role) under /api/v1; admin routes are in `admin_routes.py`.

Every answer comes from the database, so replicas behind a load balancer agree.
Agent tokens (`cgt_`) are refused here: only API tokens (`cga_`) read. Each route's
answer is the model of `server.read.views` it declares.

An agency-scoped token's agency is passed to every query as its `scope`: the read
side filters by it in SQL, so another agency's host is a 404 (its existence is not
revealed), and lists and rankings hold only the token's agency.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, Literal, TypeVar

from fastapi import APIRouter, Query, Request
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from rules.language.model import Severity
from server.api.common import AGENCY_FILTER, TEXT_FILTER, Runtime, api_credential
from server.api.schemas import error_responses
from server.errors import NotFoundError
from server.read import fixes, queries, views
from server.storage.models import FindingStatus

T = TypeVar("T")
Scope = str | None  # the agency an agency-scoped token reads; None: every agency
# The errors of every read route: bad token, wrong role, bad parameter, no database.
READ_ERRORS = error_responses(401, 403, 422, 503)
READ_ONE_ERRORS = error_responses(401, 403, 404, 422, 503)


def read_router(runtime: Runtime) -> APIRouter:
    router = APIRouter(prefix="/api/v1", tags=["read"])

    def stale_before() -> datetime:
        return runtime.clock() - timedelta(seconds=runtime.config.stale_after_seconds)

    async def answer(request: Request, role: str, work: Callable[[Session, Scope], T]) -> T:
        return await answer_scoped(runtime, request, role, work)

    def host_or_404(session: Session, agent_id: str, scope: Scope) -> dict[str, Any]:
        """The host's detail, or 404 (also for another agency's host: scope hides it)."""
        detail = queries.host_detail(session, agent_id, stale_before(), scope=scope)
        if detail is None:
            raise NotFoundError("not_found", f"no host with agent id {agent_id!r}")
        return detail

    @router.get(
        "/hosts",
        summary="Hosts, filtered and paginated",
        response_model=views.HostPage,
        responses=READ_ERRORS,
    )
    async def hosts(
        request: Request,
        *,
        agency: str | None = Query(None, pattern=AGENCY_FILTER),
        os: str | None = Query(None, pattern=TEXT_FILTER, description="substring of the OS name"),
        stale: bool | None = None,
        limit: int = Query(100, ge=1, le=1000),
        offset: int = Query(0, ge=0, le=1_000_000_000),
    ) -> dict[str, Any]:
        page = queries.Page(limit, offset)
        return await answer(
            request,
            "viewer",
            lambda s, scope: queries.list_hosts(
                s, stale_before(), page, agency=agency, os=os, stale=stale, scope=scope
            ),
        )

    @router.get(
        "/hosts/{agent_id}",
        summary="One host: latest facts, findings, score history",
        response_model=views.HostDetail,
        responses=READ_ONE_ERRORS,
    )
    async def host(request: Request, agent_id: str) -> dict[str, Any]:
        commands = fixes.fix_maps(runtime.policy.ruleset)  # the policy of this request
        return await answer(
            request,
            "viewer",
            lambda s, scope: fixes.with_host_fixes(host_or_404(s, agent_id, scope), commands),
        )

    @router.get(
        "/findings",
        summary="Findings, filtered and paginated",
        response_model=views.FindingPage,
        responses=READ_ERRORS,
    )
    async def findings(
        request: Request,
        *,
        agency: str | None = Query(None, pattern=AGENCY_FILTER),
        rule: str | None = Query(None, pattern=TEXT_FILTER),
        severity: Severity | None = None,
        status: FindingStatus | None = None,
        min_age_days: float | None = Query(None, ge=0, le=36500),
        agent_id: str | None = Query(None, pattern=TEXT_FILTER),
        limit: int = Query(100, ge=1, le=1000),
        offset: int = Query(0, ge=0, le=1_000_000_000),
    ) -> dict[str, Any]:
        page = queries.Page(limit, offset)
        commands = fixes.fix_maps(runtime.policy.ruleset)  # the policy of this request
        return await answer(
            request,
            "viewer",
            lambda s, scope: fixes.with_fix_maps(
                queries.list_findings(
                    s,
                    runtime.clock(),
                    page,
                    agency=agency,
                    rule=rule,
                    severity=severity,
                    status=status,
                    min_age_days=min_age_days,
                    agent_id=agent_id,
                    scope=scope,
                ),
                commands,
            ),
        )

    @router.get(
        "/agencies",
        summary="Agencies ranked by score (pooled over their hosts)",
        response_model=views.AgencyRanking,
        responses=error_responses(401, 403, 503),
    )
    async def agencies(request: Request) -> dict[str, Any]:
        weights = runtime.policy.weights
        return await answer(
            request,
            "viewer",
            lambda s, scope: {
                "items": queries.agencies_ranked(s, weights, stale_before(), scope=scope)
            },
        )

    @router.get(
        "/scores/hosts/{agent_id}",
        summary="A host's score and its history",
        response_model=views.HostScore,
        responses=READ_ONE_ERRORS,
    )
    async def host_score(request: Request, agent_id: str) -> dict[str, Any]:
        def work(session: Session, scope: Scope) -> dict[str, Any]:
            detail = host_or_404(session, agent_id, scope)
            keys = ("agent_id", "agency", "label", "score", "stale", "score_history")
            return {key: detail[key] for key in keys}

        return await answer(request, "viewer", work)

    @router.get(
        "/scores/agencies/{agency_id}",
        summary="An agency's score",
        response_model=views.AgencyScore,
        responses=READ_ONE_ERRORS,
    )
    async def agency_score(request: Request, agency_id: str) -> dict[str, Any]:
        weights = runtime.policy.weights

        def work(session: Session, scope: Scope) -> dict[str, Any]:
            ranked = queries.agencies_ranked(session, weights, stale_before(), scope=scope)
            for entry in ranked:
                if entry["agency"] == agency_id:
                    return entry
            raise NotFoundError("not_found", f"no agency {agency_id!r}")

        return await answer(request, "viewer", work)

    @router.get(
        "/scores/frameworks/{framework_id}",
        summary="Per requirement of a framework: pooled score of its rules",
        response_model=views.FrameworkScores,
        responses=READ_ONE_ERRORS,
    )
    async def framework_scores(
        request: Request, framework_id: str, agency: str | None = Query(None, pattern=AGENCY_FILTER)
    ) -> dict[str, Any]:
        policy = runtime.policy

        def work(session: Session, scope: Scope) -> dict[str, Any]:
            items = queries.requirement_scores(
                session,
                policy.frameworks,
                framework_id,
                policy.weights,
                agency,
                scope=scope,
                scopes=policy.policy.scopes,
            )
            if items is None:
                raise NotFoundError("not_found", f"no framework {framework_id!r} is loaded")
            return {"framework": framework_id, "agency": agency, "requirements": items}

        return await answer(request, "viewer", work)

    @router.get(
        "/remediation",
        summary="Time to remediate findings, by agency or by rule",
        response_model=views.Remediation,
        responses=READ_ERRORS,
    )
    async def remediation(
        request: Request, by: Literal["agency", "rule"] = "agency"
    ) -> dict[str, Any]:
        return await answer(
            request,
            "viewer",
            lambda s, scope: {
                "by": by,
                "items": queries.remediation_times(s, by, runtime.clock(), scope=scope),
            },
        )

    return router


async def answer_scoped(
    runtime: Runtime, request: Request, role: str, work: Callable[[Session, Scope], T]
) -> T:
    """Like `answer_with`, and `work` gets the token's agency scope (None: every agency)."""
    credential = await api_credential(runtime, request, role)
    return await run_in_threadpool(
        _in_session, runtime, lambda s: work(s, credential.agency), role == "admin"
    )


async def answer_with(
    runtime: Runtime, request: Request, role: str, work: Callable[[Session], T]
) -> T:
    """Check the API token's role, then run `work` in a session off the event loop.
    Refusals and database failures are raised to the app's error handlers."""
    await api_credential(runtime, request, role)
    return await run_in_threadpool(_in_session, runtime, work, role == "admin")


def _in_session(runtime: Runtime, work: Callable[[Session], T], write: bool) -> T:
    """Reads in a read session (no write lock on SQLite); admin changes in a write one
    (where a violated constraint is a `DatabaseError` too)."""
    if write:
        with runtime.database.write() as session:
            return work(session)
    with runtime.database.session() as session:
        return work(session)
