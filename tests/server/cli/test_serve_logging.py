"""`serve --log-level`: the collector's own log lines (retention, re-evaluation) are
printed at the chosen level beside uvicorn's; before, only their warnings reached the
log (Python's last-resort handler) and `info` lines such as each retention run were
lost. A real collector process on loopback."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import yaml

from tests.collector_process import running_collector
from tests.server.helpers import RULES_DIR


def _config(tmp_path: Path) -> Path:
    config = tmp_path / "config.yaml"
    settings = {
        "db_url": f"sqlite:///{tmp_path}/canhgac.db",
        "rules": [str(RULES_DIR)],
        "retention_every_seconds": 1.0,
    }
    config.write_text(yaml.safe_dump({"server": settings}), "utf-8")
    return config


@pytest.mark.parametrize(("level", "printed"), [("info", True), ("warning", False)])
def test_collector_log_lines_follow_the_log_level(
    tmp_path: Path, level: str, printed: bool
) -> None:
    args = ("--config", str(_config(tmp_path)), "--log-level", level)
    with running_collector(*args, log_dir=tmp_path) as collector:
        deadline = time.monotonic() + 8
        while time.monotonic() < deadline and "retention ran" not in collector.log():
            time.sleep(0.1)
        log = collector.log()
    assert ("retention ran" in log) is printed, log
    # uvicorn's own lines keep their format and level filter
    assert ("Application startup complete" in log) is printed, log
