"""Saving the enrolled token: mode 0600 from creation, atomic replacement."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from agent.delivery.enrolment import save_token
from agent.errors import ConfigError


def test_token_is_private_and_replaced_atomically(tmp_path: Path) -> None:
    state = tmp_path / "state"
    first = save_token(state / "agent.token", "cgt_a_first\n")
    assert first.read_text() == "cgt_a_first\n"
    assert stat.S_IMODE(first.stat().st_mode) == 0o600
    assert stat.S_IMODE(state.stat().st_mode) == 0o700
    second = save_token(state / "agent.token", "cgt_a_second")
    assert second == first and second.read_text() == "cgt_a_second\n"
    assert [p.name for p in state.iterdir()] == ["agent.token"]  # no temporary left


def test_a_malformed_token_is_never_written(tmp_path: Path) -> None:
    with pytest.raises(ConfigError):
        save_token(tmp_path / "agent.token", "two words")
    assert list(tmp_path.iterdir()) == []
