"""The one reader of people-edited YAML files: refused in one line, never hanging."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from rules.language.yamlfile import YamlFileError, load_yaml_file


def test_a_regular_yaml_file_loads(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("agent:\n  server: https://collector\n", "utf-8")
    assert load_yaml_file(path) == {"agent": {"server": "https://collector"}}


def test_a_fifo_is_refused_without_waiting_for_a_writer(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    with pytest.raises(YamlFileError, match="is not a regular file"):
        load_yaml_file(fifo)


def test_size_is_capped_before_parsing(tmp_path: Path) -> None:
    path = tmp_path / "big.yaml"
    path.write_bytes(b"a: " + b"x" * 100)
    with pytest.raises(YamlFileError, match="larger than 50 bytes"):
        load_yaml_file(path, max_bytes=50)


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"a: caf\xe9\n", r"c.yaml:1:7: not UTF-8 text \(byte 0xe9\)"),
        (b"a: [unclosed\n", r"c.yaml:2:1: invalid YAML: while parsing a flow sequence"),
        (b"a: 'x\x07'\n", r"c.yaml:1:6: invalid YAML: character #x0007 is not allowed"),
    ],
)
def test_problems_are_one_line_at_file_line_col(tmp_path: Path, data: bytes, expected: str) -> None:
    path = tmp_path / "c.yaml"
    path.write_bytes(data)
    with pytest.raises(YamlFileError, match=expected) as caught:
        load_yaml_file(path)
    assert "\n" not in str(caught.value) and "\\x0a" not in str(caught.value)


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(YamlFileError, match=r"cannot read .*absent.yaml"):
        load_yaml_file(tmp_path / "absent.yaml")
