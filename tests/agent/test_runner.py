"""The subprocess runner: no shell, C locale, timeouts and missing programs as errors."""

from __future__ import annotations

import time

import pytest

from agent.errors import AgentError, CommandNotFound, CommandTimeout
from agent.runner import CommandResult, SubprocessRunner
from tests.support import require_tool


def test_runs_with_c_locale_and_fixed_path() -> None:
    env = require_tool("env")
    result = SubprocessRunner()([env], timeout=10)
    lines = set(result.stdout.splitlines())
    assert result.ok
    assert "LC_ALL=C" in lines
    assert any(line.startswith("PATH=/usr/local/sbin:") for line in lines)


def test_returns_exit_status_and_both_streams() -> None:
    sh = require_tool("sh")
    result = SubprocessRunner()([sh, "-c", "echo out; echo err >&2; exit 3"], timeout=10)
    assert result == CommandResult(
        argv=(sh, "-c", "echo out; echo err >&2; exit 3"),
        returncode=3,
        stdout="out\n",
        stderr="err\n",
    )
    assert not result.ok


def test_arguments_are_not_interpreted_by_a_shell() -> None:
    echo = require_tool("echo")
    result = SubprocessRunner()([echo, "$HOME", ";", "id"], timeout=10)
    assert result.stdout == "$HOME ; id\n"


def test_timeout_kills_and_raises() -> None:
    sleep = require_tool("sleep")
    started = time.monotonic()
    with pytest.raises(CommandTimeout) as caught:
        SubprocessRunner()([sleep, "30"], timeout=0.3)
    assert time.monotonic() - started < 10
    assert isinstance(caught.value, AgentError)


def test_missing_program_raises_command_not_found() -> None:
    with pytest.raises(CommandNotFound, match="no-such-program-canhgac"):
        SubprocessRunner()(["no-such-program-canhgac"], timeout=5)


def test_invalid_bytes_in_output_are_replaced() -> None:
    printf = require_tool("printf")
    result = SubprocessRunner()([printf, "a\\377b"], timeout=10)
    assert result.stdout == "a\ufffdb"
