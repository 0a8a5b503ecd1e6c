"""The shipped systemd units, checked by systemd itself (`systemd-analyze verify`)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from server.api.connections import FD_RESERVE, MAX_CONNECTIONS
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


@pytest.mark.parametrize("unit", ["canhgac-agent.service", "canhgac-agent-once.service"])
def test_agent_units_let_the_lan_sweep_work_at_layer_2(unit: str) -> None:
    """The ARP sweep opens an AF_PACKET raw socket (scapy's srp): a unit that forbids
    the family or CAP_NET_RAW turns every scheduled sweep into the connect fallback."""
    settings = dict(
        line.split("=", 1) for line in (UNITS / unit).read_text().splitlines() if "=" in line
    )
    assert "AF_PACKET" in settings["RestrictAddressFamilies"].split()
    assert "CAP_NET_RAW" in settings["CapabilityBoundingSet"].split()


def test_server_runs_unprivileged() -> None:
    text = (UNITS / "canhgac-server.service").read_text()
    assert "User=canhgac" in text
    assert "CapabilityBoundingSet=\n" in text


def _service_settings(unit: str) -> dict[str, str]:
    """The [Service] section's last value of each key (as systemd reads repeats)."""
    settings: dict[str, str] = {}
    section = ""
    for raw in (UNITS / unit).read_text().splitlines():
        line = raw.strip()
        if line.startswith("[") and line.endswith("]"):
            section = line
        elif section == "[Service]" and "=" in line and not line.startswith("#"):
            key, _, value = line.partition("=")
            settings[key] = value
    return settings


def _bytes(value: str) -> int:
    units = {"K": 2**10, "M": 2**20, "G": 2**30}
    return int(value[:-1]) * units[value[-1]] if value[-1] in units else int(value)


def test_server_unit_bounds_files_memory_and_tasks() -> None:
    """Issue 14: the collector's own caps need the unit's limits to hold. Its default
    connection cap (MAX_CONNECTIONS) must fit under LimitNOFILE with the descriptor
    reserve left for the database, logs and the listening socket; memory is bounded
    with MemoryHigh (throttling) below MemoryMax (the OOM backstop); tasks are capped."""
    service = _service_settings("canhgac-server.service")
    assert int(service["LimitNOFILE"]) - FD_RESERVE >= MAX_CONNECTIONS
    assert 0 < _bytes(service["MemoryHigh"]) < _bytes(service["MemoryMax"])
    assert 0 < int(service["TasksMax"]) <= 4096
