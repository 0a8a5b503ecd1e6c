"""The audit package from the read API (viewer role): `GET /api/v1/audit/...`.

The same documents as `canhgac-server audit`, one route per format and scope
(`/api/v1/audit/{json,html,pdf,csv,xlsx}/agencies/{agency_id}` and `.../province`),
so the OpenAPI document names the one media type each returns: JSON is the
`AuditReport` model; the others come with a download file name.

An agency-scoped token reads only its own agency's audit: another agency's is a 404
and the province's a 403 (the audit model enforces both from the token's scope).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from server.api.common import Runtime
from server.api.read_routes import Scope, answer_scoped
from server.api.schemas import error_responses
from server.errors import IngestError, UnprocessableError
from server.read.audit import AuditPolicy, build_audit
from server.read.audit_views import AuditReport
from server.reports.errors import ReportError
from server.reports.render import FIRST_DAY, LAST_DAY, MEDIA_TYPES, Format, cut_off, render_audit
from server.reports.text import Lang

_DAYS = f"between {FIRST_DAY} and {LAST_DAY}"
AsOfQuery = Annotated[
    date | None,
    Query(
        ge=FIRST_DAY, le=LAST_DAY, description=f"the end of this day (UTC), {_DAYS}; default now"
    ),
]
PreviousQuery = Annotated[
    date | None,
    Query(
        ge=FIRST_DAY,
        le=LAST_DAY,
        description=f"a day before as_of, {_DAYS}; default: one year before as_of",
    ),
]
AUDIT_ERRORS = error_responses(
    401,
    403,
    404,
    422,
    503,
    s503="the database is unavailable, or (PDF) Chromium is not installed",
)


class RendererUnavailableError(IngestError):
    """The format needs a program this collector does not have (PDF: Chromium)."""

    status = 503


def _success(fmt: Format) -> dict[int | str, dict[str, Any]]:
    """One media type per route (the OpenAPI document names exactly what comes back)."""
    if fmt is Format.JSON:
        return {200: {"model": AuditReport, "description": "the audit model"}}
    binary = {"schema": {"type": "string", "format": "binary"}}
    return {
        200: {
            "description": f"the audit package as {fmt.value.upper()}",
            "content": {MEDIA_TYPES[fmt]: binary},
        }
    }


def audit_router(runtime: Runtime) -> APIRouter:
    router = APIRouter(prefix="/api/v1/audit", tags=["audit"])

    async def document(
        request: Request,
        *,
        agency: str | None,
        fmt: Format,
        lang: Lang,
        as_of: date | None,
        previous: date | None,
    ) -> Response:
        loaded = runtime.policy
        policy = AuditPolicy.of(loaded.policy, loaded.fingerprint, loaded.weights, loaded.vulns)
        now = runtime.clock()
        cutoff = cut_off(as_of, now)
        earlier = cut_off(previous, now) if previous is not None else None
        if earlier is not None and earlier >= cutoff:
            raise UnprocessableError(
                "invalid_request", "previous must be a day before as_of", "previous"
            )

        def work(session: Session, scope: Scope) -> AuditReport:
            return build_audit(
                session,
                policy,
                as_of=cutoff,
                agency=agency,
                stale_after_seconds=int(runtime.config.stale_after_seconds),
                previous_as_of=earlier,
                scope=scope,
            )

        report = await answer_scoped(runtime, request, "viewer", work)
        # Rendering (Chromium for PDF) is slow work: off the event loop.
        try:
            data = await run_in_threadpool(render_audit, report, fmt, lang)
        except ReportError as e:
            raise RendererUnavailableError("renderer_unavailable", str(e)) from e
        name = f"audit-{agency or 'province'}-{cutoff:%Y%m%d}.{fmt.value}"
        headers = {"Content-Disposition": f'attachment; filename="{name}"'}
        if fmt is Format.HTML or fmt is Format.JSON:
            headers = {}
        return Response(data, media_type=MEDIA_TYPES[fmt], headers=headers)

    for fmt in Format:
        _add_routes(router, fmt, document)

    return router


Document = Callable[..., Awaitable[Response]]


def _add_routes(router: APIRouter, fmt: Format, document: Document) -> None:
    """`/{format}/agencies/{agency_id}` and `/{format}/province` for one format."""
    responses = {**_success(fmt), **AUDIT_ERRORS}

    async def agency_audit(
        request: Request,
        agency_id: str,
        *,
        lang: Lang = Lang.VI,
        as_of: AsOfQuery = None,
        previous: PreviousQuery = None,
    ) -> Response:
        return await document(
            request, agency=agency_id, fmt=fmt, lang=lang, as_of=as_of, previous=previous
        )

    async def province_audit(
        request: Request,
        *,
        lang: Lang = Lang.VI,
        as_of: AsOfQuery = None,
        previous: PreviousQuery = None,
    ) -> Response:
        return await document(
            request, agency=None, fmt=fmt, lang=lang, as_of=as_of, previous=previous
        )

    router.add_api_route(
        f"/{fmt.value}/agencies/{{agency_id}}",
        agency_audit,
        methods=["GET"],
        summary=f"An agency's audit package ({fmt.value})",
        response_class=Response,
        responses=responses,
        operation_id=f"audit_agency_{fmt.value}",
    )
    router.add_api_route(
        f"/{fmt.value}/province",
        province_audit,
        methods=["GET"],
        summary=f"The province's audit package: every agency and the ranking ({fmt.value})",
        response_class=Response,
        responses=responses,
        operation_id=f"audit_province_{fmt.value}",
    )
