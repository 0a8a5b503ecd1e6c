"""The `rules` click group as users run it (through both real console scripts)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from rules.tooling.cli import rules_group
from tests.rules.conftest import DATA

BIN = Path(sys.executable).parent


def test_validate_builtin_packs() -> None:
    out = CliRunner().invoke(rules_group, ["validate"])
    assert out.exit_code == 0, out.output
    assert out.output.startswith("OK: ")


def test_validate_reports_every_problem_of_every_file() -> None:
    out = CliRunner().invoke(rules_group, ["validate", str(DATA / "bad")])
    assert out.exit_code == 1
    lines = out.stderr.strip().splitlines()
    assert lines[-1].endswith("problems found")
    files = {line.split(":", 1)[0] for line in lines[:-1]}
    assert files == {str(p) for p in (DATA / "bad").glob("*.yaml")}


def test_list_in_english() -> None:
    out = CliRunner().invoke(rules_group, ["list", "--lang", "en"])
    assert out.exit_code == 0
    telnet = next(line for line in out.output.splitlines() if line.startswith("NET-TELNET-EXPOSED"))
    assert telnet.split()[:3] == ["NET-TELNET-EXPOSED", "critical", "network-exposure"]
    assert telnet.endswith("Telnet service exposed to the network")


@pytest.mark.parametrize("script", ["canhgac-agent", "canhgac-server"])
def test_mounted_in_both_clis(script: str) -> None:
    exe = BIN / script
    assert exe.exists(), f"{script} console script not installed"
    done = subprocess.run(
        [str(exe), "rules", "validate", str(DATA / "bad" / "missing-field.yaml")],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert done.returncode == 1
    assert "missing-field.yaml:3:5: rule is missing required field 'severity'" in done.stderr
