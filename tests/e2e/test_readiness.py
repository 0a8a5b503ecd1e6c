"""Readiness distinct from liveness, against a real collector on a disk that fills up.

Before issue 14, /healthz stayed 200 while every report was answered 503 (disk full),
so a load balancer kept sending to the replica. Here a real SQLite database lives on a
real 8 MiB tmpfs (root needed to mount it; skipped elsewhere, failed under CI): once
a write fails for lack of space, /readyz says 503 `database_writes_failing` while
/healthz stays 200; when space is back one report succeeds and /readyz is 200 again.
"""

from __future__ import annotations

import errno
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests

from tests.collector_process import running_collector
from tests.server.helpers import body_of, make_facts, telnet
from tests.support import mounted_tmpfs

from .conftest import create_token

AGENCY = "so-test"


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    with mounted_tmpfs(tmp_path / "disk", "size=8m") as disk:
        yield disk


def _fill(path: Path) -> None:
    """Write zeros to `path` until the file system has no space left."""
    block = b"\0" * (64 * 1024)
    with path.open("wb", buffering=0) as filler:
        try:
            while True:
                filler.write(block)
        except OSError as e:
            if e.errno != errno.ENOSPC:
                raise


def _post(url: str, token: str, seq: int) -> requests.Response:
    facts = make_facts(collected_at=datetime.now(UTC) - timedelta(seconds=10), seq=seq)
    facts["report_id"] = str(uuid.uuid4())
    facts["listening"] = [telnet(port=20000 + seq)]  # changed facts: every report writes
    return requests.post(
        f"{url}/api/v1/reports",
        data=body_of(facts, compress=True),
        headers={"Authorization": f"Bearer {token}", "Content-Encoding": "gzip"},
        timeout=30,
    )


def test_readyz_turns_503_while_writes_fail_and_healthz_stays_200(
    small_disk: Path, tmp_path: Path
) -> None:
    db_url = f"sqlite:///{small_disk / 'canhgac.db'}"
    with running_collector("--db", db_url, log_dir=tmp_path) as served:
        token = create_token(db_url, AGENCY, tmp_path).read_text().strip()
        assert requests.get(f"{served.url}/readyz", timeout=10).json() == {
            "status": "ready",
            "reasons": [],
        }
        assert _post(served.url, token, 1).status_code == 200

        _fill(small_disk / "filler")
        answers = [_post(served.url, token, seq).status_code for seq in (2, 3)]
        assert 503 in answers, answers
        ready = requests.get(f"{served.url}/readyz", timeout=10)
        assert ready.status_code == 503
        assert "database_writes_failing" in ready.json()["reasons"]
        assert requests.get(f"{served.url}/healthz", timeout=10).status_code == 200

        (small_disk / "filler").unlink()
        assert _post(served.url, token, 4).status_code == 200
        again = requests.get(f"{served.url}/readyz", timeout=10)
        assert (again.status_code, again.json()["status"]) == (200, "ready")
