"""A configuration file that cannot be read as YAML: one line naming the file (and
line:column for YAML), exit code 2, no traceback, no escaped control characters; a
FIFO given as `--config` is refused at once instead of blocking the command."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from agent.cli.main import main
from agent.config import load_config
from agent.errors import ConfigError

CASES = [
    ("agent:\n  server: [unclosed\n", r":3:1: invalid YAML: while parsing a flow sequence"),
    ("agent:\n  server: a\n server: b\n", r":3:2: invalid YAML: "),
    ("agent:\n\tserver: x\n", r":2:1: invalid YAML: .*found character '\\t'"),
    ("agent:\n  server: 'a\x07'\n", r":2:13: invalid YAML: character #x0007 is not allowed"),
]


def _write(tmp_path: Path, content: str | bytes) -> Path:
    path = tmp_path / "canhgac.yaml"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, "utf-8")
    return path


@pytest.mark.parametrize(("content", "pattern"), CASES)
def test_bad_yaml_is_one_line_with_its_location(tmp_path: Path, content: str, pattern: str) -> None:
    path = _write(tmp_path, content)
    with pytest.raises(ConfigError, match=pattern) as caught:
        load_config(path)
    message = str(caught.value)
    assert message.startswith(f"{path}:") and "\n" not in message


def test_not_utf8_names_the_byte_and_its_place(tmp_path: Path) -> None:
    path = _write(tmp_path, b"agent:\n  agent_id: caf\xe9\n")
    with pytest.raises(ConfigError, match=r":2:16: not UTF-8 text \(byte 0xe9\)"):
        load_config(path)


@pytest.mark.parametrize(
    "content",
    [b"agent:\n  agent_id: caf\xe9\n", *(case[0].encode() for case in CASES)],
)
def test_the_cli_prints_one_clean_line_and_exits_2(tmp_path: Path, content: bytes) -> None:
    path = _write(tmp_path, content)
    result = CliRunner().invoke(main, ["collect", "--no-state", "--config", str(path)])
    assert result.exit_code == 2
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"Error: {path}:")
    assert "\\x0a" not in result.stderr and "Traceback" not in result.output


def test_a_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "config.fifo"
    os.mkfifo(fifo)
    with pytest.raises(ConfigError, match="not a regular file"):
        load_config(fifo)
    result = CliRunner().invoke(main, ["check", "--config", str(fifo)])
    assert result.exit_code == 2 and "not a regular file" in result.stderr
