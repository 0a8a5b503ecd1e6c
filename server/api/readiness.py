"""`GET /readyz`: whether this replica should be sent reports now.

`/healthz` answers whether the process is alive and reaches its database (for a
service manager or a liveness probe: restart it if not). `/readyz` answers whether a
load balancer should route to it: the database answers AND its writes are not
failing (a full disk made every report 503 while /healthz stayed 200), the policy
has rules, and the decoding slots are not all busy. Codes, not prose, in `reasons`.
"""

from __future__ import annotations

import logging
from typing import Literal

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from server.api.common import Runtime
from server.api.schemas import Answer, error_responses
from server.errors import DatabaseError

log = logging.getLogger(__name__)


class Readiness(Answer):
    status: Literal["ready", "not_ready"]
    reasons: list[
        Literal["database_unavailable", "database_writes_failing", "overloaded", "no_rules_loaded"]
    ]


def readiness_router(runtime: Runtime) -> APIRouter:
    router = APIRouter(tags=["operations"])

    @router.get(
        "/readyz",
        summary="Whether this replica should receive reports now (for load balancers)",
        response_model=Readiness,
        responses={
            **error_responses(),
            503: {"model": Readiness, "description": "not ready; `reasons` says why"},
        },
    )
    async def readyz() -> Readiness | Response:
        reasons = list(runtime.service.readiness_problems())
        try:
            await run_in_threadpool(runtime.database.ping)
        except DatabaseError as e:
            log.warning("readiness: %s", e)
            reasons.insert(0, "database_unavailable")
        if reasons:
            body = Readiness.model_validate({"status": "not_ready", "reasons": reasons})
            return JSONResponse(body.model_dump(), status_code=503)
        return Readiness(status="ready", reasons=[])

    return router
