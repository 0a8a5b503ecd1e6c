"""canhgac's collector: HTTP ingest, storage, findings, scoring and metrics.

Layering (each layer takes its dependencies as arguments, so tests and later issues
can swap them): `cli` (click, thin) -> `api` (FastAPI, thin) -> `ingest` (the
ingest core: payload checks, evaluation, one transaction) -> `store`/`findings`
(persistence) -> `models`/`db` (SQLAlchemy). `state`/`metrics` serve Prometheus from
memory. The collector imports `rules`, never the agent.
"""

from __future__ import annotations

from importlib import metadata


def version() -> str:
    """The installed distribution's version ("unknown" when running from a bare tree)."""
    try:
        return metadata.version("canhgac")
    except metadata.PackageNotFoundError:
        return "unknown"
