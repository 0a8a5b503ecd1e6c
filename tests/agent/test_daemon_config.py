"""The configuration the daemon runs with: durations, environment overrides, every
problem at once (`config check`), and `collect --no-state` reading no state."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from agent.cli.main import main
from agent.config import (
    DEFAULT_INTERVAL_SECONDS,
    InvalidConfigError,
    load_config,
    parse_duration,
)

BIN = Path(sys.executable).parent


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("15m", 900.0), ("5s", 5.0), ("1.5h", 5400.0), ("250ms", 0.25), (90, 90.0), ("2d", 172800.0)],
)
def test_durations(text: object, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["soon", "5 minutes", "-1s", "0", True, None, "1e3"])
def test_bad_durations(text: object) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)


def test_interval_defaults_to_fifteen_minutes(tmp_path: Path) -> None:
    path = tmp_path / "a.yaml"
    path.write_text("agent: {server: https://x}\n")
    assert load_config(path).interval_seconds == DEFAULT_INTERVAL_SECONDS == 900.0


def test_environment_overrides_the_file(tmp_path: Path) -> None:
    path = tmp_path / "a.yaml"
    path.write_text("agent:\n  server: https://file\n  interval: 15m\n  token_file: tok\n")
    env = {
        "CANHGAC_AGENT_SERVER": "https://env",
        "CANHGAC_AGENT_INTERVAL": "30s",
        "CANHGAC_AGENT_TLS_ENDPOINTS": "[portal.example:443, mail.example:993]",
        "CANHGAC_AGENT_SPOOL_MAX_REPORTS": "500",
        "CANHGAC_AGENT_STATE_DIR": "relative/state",
        "OTHER": "ignored",
    }
    config = load_config(path, env)
    assert config.server == "https://env"
    assert config.interval_seconds == 30.0
    assert config.tls_endpoints == ("portal.example:443", "mail.example:993")
    assert config.spool_max_reports == 500
    assert config.token_file == tmp_path / "tok"  # from the file: relative to the file
    assert config.state_dir == Path.cwd() / "relative/state"  # from the environment


def test_every_problem_at_once_with_its_path(tmp_path: Path) -> None:
    path = tmp_path / "a.yaml"
    path.write_text(
        "agent:\n  server: 42\n  interval: soon\n  probe_listeners: maybe\n"
        "  spool_max_reports: -3\n  colour: blue\n"
    )
    env = {"CANHGAC_AGENT_BUDGET_SECONDS": "0", "CANHGAC_AGENT_NOPE": "1"}
    with pytest.raises(InvalidConfigError) as caught:
        load_config(path, env)
    problems = caught.value.problems
    assert len(problems) == 7, problems
    expected = [
        "$CANHGAC_AGENT_NOPE: unknown key agent.nope",
        f"{path}: unknown key(s) in 'agent': colour",
        f"{path}: agent.server must be a non-empty string",
        "$CANHGAC_AGENT_BUDGET_SECONDS (agent.budget_seconds) must be a positive number",
        f"{path}: agent.probe_listeners must be true or false",
        f"{path}: agent.interval must be a duration",
        f"{path}: agent.spool_max_reports must be a positive integer",
    ]
    for text in expected:
        assert any(p.startswith(text) for p in problems), (text, problems)
    assert "and 6 more" in str(caught.value) and "config check" in str(caught.value)


def test_config_check_lists_every_problem_and_exits_2(tmp_path: Path) -> None:
    path = tmp_path / "a.yaml"
    path.write_text("agent:\n  interval: soon\n  rules: 3\n")
    result = CliRunner().invoke(main, ["config", "check", "--config", str(path), "--lang", "en"])
    assert result.exit_code == 2
    lines = result.stderr.splitlines()
    assert len(lines) == 3 and lines[2] == "Error: 2 problem(s)"
    assert f"{path}: agent.rules must be a path or a list of paths" in lines[:2]
    assert any(line.startswith(f"{path}: agent.interval must be") for line in lines[:2])


def test_config_check_of_a_valid_file_in_both_languages(tmp_path: Path) -> None:
    path = tmp_path / "a.yaml"
    path.write_text("agent:\n  interval: 2.5s\n")
    vi = CliRunner().invoke(main, ["config", "check", "--config", str(path)])
    en = CliRunner().invoke(main, ["config", "check", "--config", str(path), "--lang", "en"])
    assert (vi.exit_code, en.exit_code) == (0, 0)
    assert vi.stdout == "cấu hình hợp lệ; thu thập mỗi 2,5 giây\n"
    assert en.stdout == "configuration valid; collecting every 2.5 s\n"


def test_collect_no_state_reads_no_state(tmp_path: Path) -> None:
    """A FIFO in place of the state file: reading it would block until the timeout."""
    state = tmp_path / "state"
    state.mkdir()
    os.mkfifo(state / "state.json")
    config = tmp_path / "a.yaml"
    config.write_text(f"agent:\n  state_dir: {state}\n  probe_listeners: false\n")
    done = subprocess.run(
        [str(BIN / "canhgac-agent"), "collect", "--no-state", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert '"seq": 0' in done.stdout
    assert sorted(p.name for p in state.iterdir()) == ["state.json"]
