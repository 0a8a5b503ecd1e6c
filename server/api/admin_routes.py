"""Admin routes (API token with role admin): agencies and agent revocation."""

from __future__ import annotations

from fastapi import APIRouter, Request
from sqlalchemy.orm import Session

from server.api.common import Runtime, api_credential, read_small_json
from server.api.read_routes import answer_with
from server.api.schemas import AgencyAnswer, RevokeAnswer, error_responses
from server.auth.agent_tokens import revoke_agent
from server.auth.enrolment import add_agency
from server.errors import InvalidArgumentError, NotFoundError, UnprocessableError

ADMIN_ERRORS = error_responses(400, 401, 403, 413, 422, 503)


def admin_router(runtime: Runtime) -> APIRouter:
    router = APIRouter(prefix="/api/v1", tags=["admin"])

    @router.post(
        "/agencies",
        summary="Add or rename an agency (admin)",
        response_model=AgencyAnswer,
        responses=ADMIN_ERRORS,
    )
    async def post_agency(request: Request) -> AgencyAnswer:
        # authenticate before reading a byte of the body: strangers get a 401
        await api_credential(runtime, request, "admin")
        body = await read_small_json(request)
        if not isinstance(body, dict) or not isinstance(body.get("id"), str):
            raise UnprocessableError("invalid_request", "need id", "id")
        agency_id, name = body["id"], body.get("name", body["id"])

        def work(session: Session) -> AgencyAnswer:
            try:
                agency = add_agency(session, agency_id, str(name), runtime.clock)
            except InvalidArgumentError as e:
                raise UnprocessableError("invalid_request", str(e), "id") from e
            return AgencyAnswer(id=agency.id, name=agency.name)

        return await answer_with(runtime, request, "admin", work)

    @router.post(
        "/agents/{agent_id}/revoke",
        summary="Revoke every token of an agent (admin)",
        response_model=RevokeAnswer,
        responses=error_responses(401, 403, 404, 422, 503),
    )
    async def post_revoke(request: Request, agent_id: str) -> RevokeAnswer:
        def work(session: Session) -> RevokeAnswer:
            revoked = revoke_agent(session, agent_id, runtime.clock)
            if not revoked:
                raise NotFoundError("not_found", f"no agent {agent_id!r}")
            return RevokeAnswer(agent_id=agent_id, revoked_tokens=revoked)

        return await answer_with(runtime, request, "admin", work)

    return router
