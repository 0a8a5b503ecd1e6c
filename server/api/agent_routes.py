"""Routes agents call: `POST /api/v1/enroll` and `POST /api/v1/reports`."""

from __future__ import annotations

import logging

from fastapi import APIRouter, Request, Response
from starlette.concurrency import run_in_threadpool

from server.api.common import Runtime, bearer_token, read_body_capped, read_small_json
from server.api.schemas import EnrolAnswer, ReportAnswer, error_responses
from server.auth.enrolment import Enrolment, enrol, parse_enrol_request, verify_enrol_secret
from server.errors import DatabaseError, IngestError

log = logging.getLogger(__name__)

REPORTS_PATH = "/api/v1/reports"
ENROLL_PATH = "/api/v1/enroll"


# The bodies are read raw (capped, streamed, maybe gzip), not through FastAPI's
# parameters, so the OpenAPI document is told what they are here.
_REPORT_BODY = {
    "required": True,
    "description": "a canhgac.facts/v1 document (rules/schema/facts-v1.schema.json),"
    " optionally with Content-Encoding: gzip",
    "content": {"application/json": {"schema": {"type": "object"}}},
}
_ENROL_BODY = {
    "required": True,
    "content": {
        "application/json": {
            "schema": {
                "type": "object",
                "required": ["agent_id", "hostname"],
                "properties": {
                    "agent_id": {
                        "type": "string",
                        "pattern": "^[A-Za-z0-9._:-]{1,128}$",
                    },
                    "hostname": {"type": "string", "minLength": 1, "maxLength": 255},
                    "machine_id": {"type": "string", "maxLength": 128},
                },
            }
        }
    },
}


def agent_router(runtime: Runtime) -> APIRouter:
    router = APIRouter(tags=["agents"])

    @router.post(
        REPORTS_PATH,
        summary="Deliver one facts document (canhgac.facts/v1, optionally gzip)",
        response_model=ReportAnswer,
        response_model_exclude_unset=True,
        openapi_extra={"requestBody": _REPORT_BODY},
        responses={
            200: {"description": "stored (or already stored: duplicate true)"},
            **error_responses(
                400,
                401,
                403,
                413,
                415,
                422,
                429,
                503,
                s403="the token may not report for this agent",
                s422="not a valid facts document",
            ),
        },
    )
    async def post_report(request: Request) -> ReportAnswer:
        return await _post_report(runtime, request)

    @router.post(
        ENROLL_PATH,
        summary="Enrol an agent with its agency's enrolment secret (Bearer cge_...)",
        response_model=EnrolAnswer,
        openapi_extra={"requestBody": _ENROL_BODY},
        responses=error_responses(
            400,
            401,
            403,
            409,
            413,
            422,
            503,
            s401="missing, unknown, rotated or expired enrolment secret",
            s403="the agent id belongs to another agency",
            s409="the agent is already enrolled (revoke it first)",
            s422="invalid agent_id / hostname / machine_id",
        ),
    )
    async def post_enroll(request: Request, response: Response) -> EnrolAnswer:
        presented = bearer_token(request.headers.get("authorization"))
        body = await read_small_json(request)
        enrolment = await run_in_threadpool(_enrol, runtime, presented, body)
        log.info("agent %s enrolled in agency %s", enrolment.agent_id, enrolment.agency_id)
        response.headers["Cache-Control"] = "no-store"
        return EnrolAnswer.model_validate(enrolment.to_body())

    return router


def _enrol(runtime: Runtime, presented: str | None, body: object) -> Enrolment:
    now = runtime.clock()
    # A constraint violated by a concurrent enrolment is a DatabaseError too: a 503.
    with runtime.database.write() as session:
        agency_id = verify_enrol_secret(session, presented, now)
        agent_id, hostname = parse_enrol_request(body)
        return enrol(session, agency_id, agent_id, hostname, runtime.clock)


async def _post_report(runtime: Runtime, request: Request) -> ReportAnswer:
    """Ingest one report, counting its outcome; refusals and failures are raised to the
    app's error handlers."""
    service, metrics = runtime.service, runtime.ingest_metrics
    try:
        presented = bearer_token(request.headers.get("authorization"))
        credential = await run_in_threadpool(service.authenticate, presented)
        service.check_rate(credential)
        body = await read_body_capped(request, service.limits.max_body_bytes)
        result = await run_in_threadpool(
            service.ingest, credential, body, request.headers.get("content-encoding")
        )
    except IngestError as e:
        metrics.count_status(e.status)
        raise
    except DatabaseError:
        metrics.count("unavailable")
        raise
    except Exception:
        # Counted, then left to the app's handler (JSON 500) and the server's log.
        metrics.count("error")
        raise
    metrics.count(result.status)
    if result.dropped_keys:
        metrics.dropped_keys.inc(result.dropped_keys)
    return ReportAnswer.model_validate(result.to_body())
