"""Routes agents call: `POST /api/v1/enroll` and `POST /api/v1/reports`."""

from __future__ import annotations

import logging

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from sqlalchemy.exc import SQLAlchemyError
from starlette.concurrency import run_in_threadpool

from server.api.common import (
    Runtime,
    bearer_token,
    error_response,
    read_body_capped,
    read_small_json,
    unavailable,
)
from server.auth.enrolment import Enrolment, enrol, parse_enrol_request, verify_enrol_secret
from server.errors import DatabaseError, IngestError

log = logging.getLogger(__name__)

REPORTS_PATH = "/api/v1/reports"
ENROLL_PATH = "/api/v1/enroll"


def agent_router(runtime: Runtime) -> APIRouter:
    router = APIRouter(tags=["agents"])

    @router.post(
        REPORTS_PATH,
        summary="Deliver one facts document (canhgac.facts/v1, optionally gzip)",
        responses={
            200: {"description": "stored (or already stored: duplicate true)"},
            401: {"description": "missing, unknown or revoked agent token"},
            403: {"description": "the token may not report for this agent"},
            413: {"description": "body, decompressed body or a list too large"},
            422: {"description": "not a valid facts document"},
            429: {"description": "rate limited (Retry-After)"},
        },
    )
    async def post_report(request: Request) -> Response:
        return await _post_report(runtime, request)

    @router.post(
        ENROLL_PATH,
        summary="Enrol an agent with its agency's enrolment secret (Bearer cge_...)",
        responses={
            200: {"description": '{"agency", "agent_id", "token_id", "token"}'},
            401: {"description": "missing, unknown, rotated or expired enrolment secret"},
            403: {"description": "the agent id belongs to another agency"},
            409: {"description": "the agent is already enrolled (revoke it first)"},
            422: {"description": "invalid agent_id / hostname / machine_id"},
        },
    )
    async def post_enroll(request: Request) -> Response:
        try:
            presented = bearer_token(request.headers.get("authorization"))
            body = await read_small_json(request)
            enrolment = await run_in_threadpool(_enrol, runtime, presented, body)
        except IngestError as e:
            return error_response(e)
        except DatabaseError:
            log.exception("enrolment failed")
            return unavailable()
        log.info("agent %s enrolled in agency %s", enrolment.agent_id, enrolment.agency_id)
        return JSONResponse(enrolment.to_body(), headers={"Cache-Control": "no-store"})

    return router


def _enrol(runtime: Runtime, presented: str | None, body: object) -> Enrolment:
    now = runtime.clock()
    try:
        with runtime.database.write() as session:
            agency_id = verify_enrol_secret(session, presented, now)
            agent_id, hostname = parse_enrol_request(body)
            return enrol(session, agency_id, agent_id, hostname, runtime.clock)
    except SQLAlchemyError as e:
        raise DatabaseError(f"cannot enrol: {e}") from e


async def _post_report(runtime: Runtime, request: Request) -> Response:
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
        return error_response(e)
    except DatabaseError:
        log.exception("report not stored")
        metrics.count("unavailable")
        return unavailable()
    except Exception:
        # Counted, then left to the app's handler (JSON 500) and the server's log.
        metrics.count("error")
        raise
    metrics.count(result.status)
    return JSONResponse(result.to_body())
