"""Every failure of every route as `{"error": {"code", "message", "field"?}}`.

Routers raise; these handlers answer: the core's refusals (`IngestError`, with their
status and headers), an unavailable database (503, Retry-After), FastAPI's own
parameter validation (422), unknown routes (404), wrong methods (405) and anything
unexpected (500, details only in the log).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException

from server.api.common import error_response, unavailable
from server.errors import DatabaseError, IngestError, error_body

log = logging.getLogger(__name__)
E = TypeVar("E", bound=Exception)

_HTTP_CODES = {
    404: ("not_found", "no such route"),
    405: ("method_not_allowed", "this method is not allowed here"),
}


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(IngestError, _handler(IngestError, _refused))
    app.add_exception_handler(DatabaseError, _handler(DatabaseError, _database_unavailable))
    app.add_exception_handler(
        RequestValidationError, _handler(RequestValidationError, _invalid_request)
    )
    app.add_exception_handler(HTTPException, _handler(HTTPException, _http_error))
    app.add_exception_handler(Exception, _internal_error)


def _handler(
    kind: type[E], answer: Callable[[Request, E], Awaitable[Response]]
) -> Callable[[Request, Exception], Awaitable[Response]]:
    """`answer`, typed for the exception class it is registered for."""

    async def handle(request: Request, error: Exception) -> Response:
        if not isinstance(error, kind):
            raise error
        return await answer(request, error)

    return handle


async def _refused(_request: Request, error: IngestError) -> Response:
    return error_response(error)


async def _database_unavailable(request: Request, error: DatabaseError) -> Response:
    log.warning("%s %s: %s", request.method, request.url.path, error)
    return unavailable()


async def _invalid_request(_request: Request, error: RequestValidationError) -> Response:
    problems: Sequence[Any] = error.errors()
    first: dict[str, Any] = problems[0] if problems else {}
    location = [str(part) for part in first.get("loc", ())]
    # ("query", "limit") -> "limit"; ("body", "a", 0) -> "a.0"
    field = ".".join(location[1:]) or None
    message = str(first.get("msg", "invalid request"))
    if field is not None:
        message = f"{location[0]} parameter {field}: {message}"
    if len(problems) > 1:
        message += f" (and {len(problems) - 1} more)"
    return JSONResponse(error_body("invalid_request", message, field), status_code=422)


async def _http_error(_request: Request, error: HTTPException) -> Response:
    code, message = _HTTP_CODES.get(error.status_code, ("http_error", str(error.detail)))
    return JSONResponse(
        error_body(code, message), status_code=error.status_code, headers=error.headers
    )


async def _internal_error(_request: Request, _error: Exception) -> Response:
    # Starlette logs the exception itself; the client gets no internals.
    return JSONResponse(error_body("internal", "internal error"), status_code=500)
