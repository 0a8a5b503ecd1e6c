"""The agent's version is a literal (cheap to import, and the same in the wheel, the
.deb and the .rpm, which carry no distribution metadata): it must follow the project's."""

from __future__ import annotations

import importlib.metadata
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from agent import __version__

ROOT = Path(__file__).resolve().parents[2]


def test_version_is_pyprojects() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert __version__ == project["project"]["version"]


def test_version_is_the_installed_distributions() -> None:
    # The development install (pip install -e) carries metadata; a mismatch means the
    # literal was not bumped with pyproject.toml.
    assert __version__ == importlib.metadata.version("canhgac")


@pytest.mark.parametrize("module", ["importlib.metadata", "requests", "urllib3"])
def test_starting_the_cli_does_not_load(module: str) -> None:
    # Each is tens of ms of every start (bench/agent_collect.py); requests is loaded
    # when a command sends (agent.delivery.transport.new_session), never before.
    code = f"import sys, agent.cli.main; sys.exit({module!r} in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0
