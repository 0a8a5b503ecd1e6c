"""The shipped systemd units, checked by systemd itself (`systemd-analyze verify`)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.support import require_tool

UNITS = Path(__file__).resolve().parents[2] / "packaging" / "systemd"


@pytest.mark.integration
@pytest.mark.parametrize(
    "unit", [*sorted(p.name for p in UNITS.glob("*.service")), "canhgac-agent.timer"]
)
def test_unit_verifies(unit: str, tmp_path: Path) -> None:
    analyze = require_tool("systemd-analyze")
    for source in UNITS.iterdir():
        text = source.read_text()
        # verify resolves ExecStart binaries: point them at a binary that exists here
        (tmp_path / source.name).write_text(
            text.replace("/usr/local/bin/canhgac-", f"{tmp_path}/canhgac-")
        )
    for name in ("canhgac-agent", "canhgac-server"):
        shutil.copy("/bin/true", tmp_path / name)
    done = subprocess.run(
        [analyze, "verify", "--man=no", str(tmp_path / unit)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    relevant = [
        line
        for line in (done.stdout + done.stderr).splitlines()
        if unit.split(".", maxsplit=1)[0] in line and "Failed to" not in line
    ]
    assert done.returncode == 0 and relevant == [], done.stdout + done.stderr


def test_agent_service_is_confined() -> None:
    text = (UNITS / "canhgac-agent.service").read_text()
    for directive in (
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "StateDirectory=canhgac-agent",
    ):
        assert directive in text


def test_server_runs_unprivileged() -> None:
    text = (UNITS / "canhgac-server.service").read_text()
    assert "User=canhgac" in text
    assert "CapabilityBoundingSet=\n" in text
