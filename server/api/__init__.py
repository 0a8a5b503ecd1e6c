"""The HTTP API (FastAPI), kept thin: routers authenticate, read bodies within limits,
hand the work to the core off the event loop, and map refusals to JSON.

Routes: agents (`agents.py`): `POST /api/v1/enroll`, `POST /api/v1/reports`; the read
API and admin routes (`read.py`) under `/api/v1` for API tokens; `GET /healthz`,
`GET /metrics`, and the OpenAPI schema at `GET /api/v1/openapi.json`.
Every refusal has the body `{"error": {"code", "message", "field"?}}`.
"""

from server.api.app import create_app
from server.api.common import bearer_token, error_response, read_body_capped

__all__ = ["bearer_token", "create_app", "error_response", "read_body_capped"]
