"""`serve --workers 2`: the retention runs once per period across the workers (the
lease of `server.evaluation.lease`), not once per worker; a real collector process
on loopback, on SQLite and PostgreSQL."""

from __future__ import annotations

import itertools
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import create_engine, select

from server.evaluation.lease import RETENTION_ROW
from server.storage.models import PolicyState
from tests.collector_process import running_collector
from tests.server.helpers import RULES_DIR

EVERY = 2.0  # retention_every_seconds: each worker asks four times per period
WATCH = 9.0


def test_retention_runs_once_per_period_across_workers(db_url: str, tmp_path: Path) -> None:
    """Each run starts by taking the turn in `policy_state` (its start time and the
    worker's lease owner): watched from outside, the starts are a period apart."""
    config = tmp_path / "config.yaml"
    settings: dict[str, Any] = {"db_url": db_url, "rules": [str(RULES_DIR)]}
    settings["retention_every_seconds"] = EVERY
    config.write_text(yaml.safe_dump({"server": settings}), "utf-8")
    args = ("--config", str(config), "--workers", "2", "--log-level", "warning")
    starts: dict[datetime, set[str]] = {}
    engine = create_engine(db_url)
    query = select(PolicyState.lease_owner, PolicyState.updated_at).where(
        PolicyState.id == RETENTION_ROW
    )
    try:
        with running_collector(*args, log_dir=tmp_path) as collector:
            deadline = time.monotonic() + WATCH
            while time.monotonic() < deadline:
                with engine.connect() as connection:
                    row = connection.execute(query).one_or_none()
                if row is not None and row.updated_at is not None:
                    starts.setdefault(row.updated_at, set()).add(row.lease_owner)
                time.sleep(0.05)
            assert collector.process.poll() is None, collector.log()
    finally:
        engine.dispose()
    times = sorted(starts)
    # Two workers asking four times per period each, but one run per period in all.
    assert 2 <= len(times) <= WATCH / EVERY + 1, starts
    gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(times)]
    assert min(gaps) >= EVERY, gaps
