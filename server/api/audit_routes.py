"""The audit package from the read API (viewer role): `GET /api/v1/audit/...`.

The same documents as `canhgac-server audit`, one route per format and scope
(`/api/v1/audit/{json,html,pdf,csv,xlsx}/agencies/{agency_id}` and `.../province`),
so the OpenAPI document names the one media type each returns: JSON is the
`AuditReport` model; the others come with a download file name.

An agency-scoped token reads only its own agency's audit: another agency's is a 404
and the province's a 403 (the audit model enforces both from the token's scope).

The document is written, as its findings and hosts are read from the database, into
a temporary file (in memory up to `SPOOL_BYTES`, then on disk), and sent from it
once complete: a failure is still a precise error status (nothing half sent), the
database session is closed before the first byte goes out, and a province's
document is never held in memory whole.
"""

from __future__ import annotations

import tempfile
from collections.abc import Awaitable, Callable, Iterator
from datetime import date
from typing import IO, Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response, StreamingResponse
from sqlalchemy.orm import Session

from server.api.common import Runtime
from server.api.read_routes import Scope, answer_scoped
from server.api.schemas import error_responses
from server.errors import IngestError, UnprocessableError
from server.read.audit import AuditPolicy, audit_outline
from server.read.audit_views import AuditReport
from server.reports.errors import ReportError
from server.reports.render import FIRST_DAY, LAST_DAY, MEDIA_TYPES, Format, cut_off, stream_audit
from server.reports.tabular import Table
from server.reports.text import Lang

SPOOL_BYTES = 8 * 2**20  # a document larger than this is spooled to disk
_SEND_BYTES = 2**16

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
TableQuery = Annotated[
    Table | None,
    Query(description="csv only: the table (default findings; the XLSX holds all four)"),
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
        table: Table | None,
    ) -> Response:
        if table is not None and fmt is not Format.CSV:
            raise UnprocessableError("invalid_request", "table applies to csv only", "table")
        loaded = runtime.policy
        policy = AuditPolicy.of(loaded.policy, loaded.fingerprint, loaded.weights, loaded.vulns)
        now = runtime.clock()
        cutoff = cut_off(as_of, now)
        earlier = cut_off(previous, now) if previous is not None else None
        if earlier is not None and earlier >= cutoff:
            raise UnprocessableError(
                "invalid_request", "previous must be a day before as_of", "previous"
            )

        def work(session: Session, scope: Scope) -> IO[bytes]:
            outline, detail = audit_outline(
                session,
                policy,
                as_of=cutoff,
                agency=agency,
                stale_after_seconds=int(runtime.config.stale_after_seconds),
                previous_as_of=earlier,
                scope=scope,
            )
            spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES)  # noqa: SIM115 (sent, then closed)
            try:
                for chunk in stream_audit(
                    outline, fmt, lang, detail, table=table or Table.FINDINGS
                ):
                    spool.write(chunk)
            except ReportError as e:
                spool.close()
                raise RendererUnavailableError("renderer_unavailable", str(e)) from e
            except BaseException:
                spool.close()
                raise
            spool.seek(0)
            return spool

        # Reading and writing (Chromium for PDF) is slow work: off the event loop.
        spool = await answer_scoped(runtime, request, "viewer", work)
        suffix = f"-{table.value}" if table is not None else ""
        name = f"audit-{agency or 'province'}-{cutoff:%Y%m%d}{suffix}.{fmt.value}"
        headers = {"Content-Disposition": f'attachment; filename="{name}"'}
        if fmt is Format.HTML or fmt is Format.JSON:
            headers = {}
        return StreamingResponse(_sent(spool), media_type=MEDIA_TYPES[fmt], headers=headers)

    for fmt in Format:
        _add_routes(router, fmt, document)

    return router


def _sent(spool: IO[bytes]) -> Iterator[bytes]:
    """The spooled document in blocks, closed (its disk file removed) when sent or
    when the client goes away."""
    try:
        while block := spool.read(_SEND_BYTES):
            yield block
    finally:
        spool.close()


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
        table: TableQuery = None,
    ) -> Response:
        return await document(
            request,
            agency=agency_id,
            fmt=fmt,
            lang=lang,
            as_of=as_of,
            previous=previous,
            table=table,
        )

    async def province_audit(
        request: Request,
        *,
        lang: Lang = Lang.VI,
        as_of: AsOfQuery = None,
        previous: PreviousQuery = None,
        table: TableQuery = None,
    ) -> Response:
        return await document(
            request, agency=None, fmt=fmt, lang=lang, as_of=as_of, previous=previous, table=table
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
