"""The LAN devices of agencies (viewer role): `GET /api/v1/lan/devices`.

An agency-scoped token sees only its agency's devices (the scope is applied in the
query, `server.read.lan`); asking for another agency by filter gives an empty page.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Request

from server.api.common import AGENCY_FILTER, Runtime
from server.api.read_routes import READ_ERRORS, answer_scoped
from server.read import lan
from server.read.lan_views import LanDevicePage


def lan_router(runtime: Runtime) -> APIRouter:
    router = APIRouter(prefix="/api/v1", tags=["read"])

    @router.get(
        "/lan/devices",
        summary="Devices discovered on agencies' LANs, managed (enrolled) or not",
        response_model=LanDevicePage,
        responses=READ_ERRORS,
    )
    async def devices(
        request: Request,
        *,
        # An agency id's own form (server.auth.agent_tokens): anything else is a 422.
        agency: str | None = Query(None, pattern=AGENCY_FILTER),
        managed: bool | None = Query(None, description="false: devices no agent runs on"),
        limit: int = Query(100, ge=1, le=1000),
        offset: int = Query(0, ge=0, le=1_000_000_000),
    ) -> dict[str, Any]:
        return await answer_scoped(
            runtime,
            request,
            "viewer",
            lambda s, scope: lan.list_devices(
                s, limit=limit, offset=offset, agency=agency, managed=managed, scope=scope
            ),
        )

    return router
