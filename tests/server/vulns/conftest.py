"""Shared fixtures: the feed samples of tests/data/server/vulns imported into a store,
and the facts recorded on a Debian 12 machine."""

from __future__ import annotations

import copy
import json
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest

from server.vulns.feeds.detect import read_feed
from server.vulns.store import build_store

DATA = Path(__file__).resolve().parents[2] / "data" / "server" / "vulns"
FETCHED = datetime(2026, 11, 29, 6, 0, tzinfo=UTC)
IMPORTED = datetime(2026, 11, 29, 7, 0, tzinfo=UTC)
TODAY = date(2026, 11, 30)
RUNNING = "6.1.0-41-amd64"


def recorded_facts() -> dict[str, Any]:
    facts: dict[str, Any] = json.loads((DATA / "facts.debian12.json").read_text("utf-8"))
    return facts


def with_kernels(facts: dict[str, Any]) -> dict[str, Any]:
    """The recorded host runs a virtual machine kernel that no package installed; this
    adds what a Debian 12 server has: the running signed image and an older one."""
    changed = copy.deepcopy(facts)
    changed["host"]["kernel"]["release"] = RUNNING
    changed["packages"]["items"] += [
        {"name": f"linux-image-{RUNNING}", "version": "6.1.187-1", "architecture": "amd64",
         "source": "linux-signed-amd64", "source_version": "6.1.187+1"},
        {"name": "linux-image-6.1.0-28-amd64", "version": "6.1.119-1", "architecture": "amd64",
         "source": "linux-signed-amd64", "source_version": "6.1.119+1"},
    ]  # fmt: skip
    return changed


def import_samples(store: Path, names: tuple[str, ...] = ("debian-tracker.json",)) -> str:
    return build_store(store, [read_feed(DATA / name, FETCHED) for name in names], IMPORTED)


@pytest.fixture
def store(tmp_path: Path) -> Path:
    path = tmp_path / "vulndb.sqlite"
    import_samples(path, ("debian-tracker.json", "kev.json", "epss.csv"))
    return path
