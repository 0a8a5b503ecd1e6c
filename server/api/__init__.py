"""The HTTP API (FastAPI), kept thin: routers authenticate, read bodies within limits,
hand the work to the core off the event loop, and answer with declared models.

Routes: agents (`agent_routes.py`): `POST /api/v1/enroll`, `POST /api/v1/reports`;
the read API (`read_routes.py`) and admin routes (`admin_routes.py`) under `/api/v1`
for API tokens; `GET /healthz`, `GET /metrics` (`app.py`), and the OpenAPI schema at
`GET /api/v1/openapi.json`. Answer models are in `schemas.py` and `server.read.views`;
every failure has the body `{"error": {"code", "message", "field"?}}`
(`error_handlers.py`). The replica's background work is `server.background`.
"""

from server.api.app import create_app
from server.api.common import bearer_token, error_response, read_body_capped

__all__ = ["bearer_token", "create_app", "error_response", "read_body_capped"]
