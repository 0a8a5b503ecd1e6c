"""Admin routes (API token with role admin): agencies and agent revocation."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session

from server.api.common import Runtime, api_credential, error_response, read_small_json, unavailable
from server.api.read_routes import answer_with
from server.auth.agent_tokens import revoke_agent
from server.auth.enrolment import add_agency
from server.errors import (
    DatabaseError,
    IngestError,
    InvalidArgumentError,
    NotFoundError,
    UnprocessableError,
)


def admin_router(runtime: Runtime) -> APIRouter:
    router = APIRouter(prefix="/api/v1", tags=["admin"])

    @router.post("/agencies", summary="Add or rename an agency (admin)")
    async def post_agency(request: Request) -> Response:
        try:
            # authenticate before reading a byte of the body: strangers get a 401
            await api_credential(runtime, request, "admin")
            body = await read_small_json(request)
        except IngestError as e:
            return error_response(e)
        except DatabaseError:
            return unavailable()
        if not isinstance(body, dict) or not isinstance(body.get("id"), str):
            return error_response(UnprocessableError("invalid_request", "need id", "id"))
        agency_id, name = body["id"], body.get("name", body["id"])

        def work(session: Session) -> dict[str, Any]:
            try:
                agency = add_agency(session, agency_id, str(name), runtime.clock)
            except InvalidArgumentError as e:
                raise UnprocessableError("invalid_request", str(e), "id") from e
            return {"id": agency.id, "name": agency.name}

        return await answer_with(runtime, request, "admin", work)

    @router.post("/agents/{agent_id}/revoke", summary="Revoke every token of an agent (admin)")
    async def post_revoke(request: Request, agent_id: str) -> Response:
        def work(session: Session) -> dict[str, Any]:
            revoked = revoke_agent(session, agent_id, runtime.clock)
            if not revoked:
                raise NotFoundError("not_found", f"no agent {agent_id!r}")
            return {"agent_id": agent_id, "revoked_tokens": revoked}

        return await answer_with(runtime, request, "admin", work)

    return router
