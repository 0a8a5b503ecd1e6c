"""Agent identity: configured, derived from the machine id like systemd does, or random
and persisted."""

from __future__ import annotations

import re
import subprocess
import uuid
from pathlib import Path

import pytest

from agent.errors import ConfigError
from agent.state.identity import APP_ID, app_specific_id, next_identity, validate_agent_id
from agent.state.store import StateStore
from tests.agent.conftest import ROOTS
from tests.support import require, require_tool

SCHEMA_AGENT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]*$")


def test_matches_systemd_app_specific_id() -> None:
    tool = require_tool("systemd-id128")
    require(Path("/etc/machine-id").is_file(), "no /etc/machine-id on this machine")
    machine_id = Path("/etc/machine-id").read_text().strip()
    for app in (APP_ID, uuid.UUID("8f9ae6bc-8b3d-4f51-9d2a-2ad2c1e1c5d7")):
        expected = subprocess.run(
            [tool, "machine-id", f"--app-specific={app}", "--uuid"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        assert app_specific_id(machine_id, app) == expected


def test_derived_id_is_a_uuid4_that_hides_the_machine_id() -> None:
    machine_id = (ROOTS / "debian12/etc/machine-id").read_text().strip()
    derived = app_specific_id(machine_id)
    parsed = uuid.UUID(derived)
    assert parsed.version == 4
    assert machine_id not in derived.replace("-", "")
    assert app_specific_id(machine_id) == derived  # stable
    other_app = app_specific_id(machine_id, uuid.UUID(int=1))
    assert other_app != derived


def test_next_identity_derives_from_the_machine_id(tmp_path: Path) -> None:
    store = StateStore(tmp_path)
    first = next_identity(store, None, ROOTS / "debian12")
    second = next_identity(store, None, ROOTS / "debian12")
    machine_id = (ROOTS / "debian12/etc/machine-id").read_text().strip()
    assert first.agent_id == second.agent_id == app_specific_id(machine_id)
    assert (first.seq, second.seq) == (1, 2)
    assert store.load().agent_id is None  # nothing random was needed


def test_configured_id_wins(tmp_path: Path) -> None:
    identity = next_identity(StateStore(tmp_path), "so-ttt.web01", ROOTS / "debian12")
    assert identity.agent_id == "so-ttt.web01"


def test_random_id_is_persisted_without_a_machine_id(tmp_path: Path) -> None:
    root = ROOTS / "rocky9"  # machine-id says "uninitialized"
    first = next_identity(StateStore(tmp_path / "s"), None, root)
    again = next_identity(StateStore(tmp_path / "s"), None, root)
    assert first.agent_id == again.agent_id
    assert uuid.UUID(first.agent_id).version == 4
    assert SCHEMA_AGENT_ID.match(first.agent_id)
    elsewhere = next_identity(StateStore(tmp_path / "other"), None, root)
    assert elsewhere.agent_id != first.agent_id


@pytest.mark.parametrize("bad", ["", "-leading-dash", "has space", "x" * 129, "a/b", "é"])
def test_invalid_configured_ids_are_rejected(bad: str) -> None:
    with pytest.raises(ConfigError):
        validate_agent_id(bad)


@pytest.mark.parametrize("good", ["a", "host-01", "A.b_c:d-e", "x" * 128])
def test_valid_configured_ids_match_the_schema(good: str) -> None:
    assert validate_agent_id(good) == good
    assert SCHEMA_AGENT_ID.match(good)
