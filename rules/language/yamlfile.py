"""Reading a YAML file that people edit (configuration files) safely, in one place.

Both CLIs read their configuration through `load_yaml_file`: a FIFO or a device is
refused instead of blocking, the size is capped before reading, and text that is not
UTF-8 or not YAML is one line naming `file:line:col`, never a traceback or escaped
control characters. The agent and the collector turn `YamlFileError` into their own
configuration error.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

import yaml

from rules.errors import RulesError

MAX_YAML_FILE_BYTES = 1024 * 1024


class YamlFileError(RulesError):
    """The file cannot be read as YAML; the message is one line naming the file."""


def read_text_file(path: Path, max_bytes: int = MAX_YAML_FILE_BYTES) -> str:
    """The text of a regular file of at most `max_bytes`, decoded as UTF-8."""
    try:
        # O_NONBLOCK: opening a FIFO must not wait for a writer before we can refuse it.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as e:
        raise YamlFileError(f"cannot read {path}: {e.strerror or e}") from e
    with os.fdopen(fd, "rb") as handle:
        try:
            if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
                raise YamlFileError(f"{path} is not a regular file")
            data = handle.read(max_bytes + 1)
        except OSError as e:
            raise YamlFileError(f"cannot read {path}: {e.strerror or e}") from e
    if len(data) > max_bytes:
        raise YamlFileError(f"{path} is larger than {max_bytes} bytes")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        column = e.start - (data.rfind(b"\n", 0, e.start) + 1) + 1
        raise YamlFileError(
            f"{path}:{line}:{column}: not UTF-8 text (byte 0x{data[e.start]:02x});"
            " save the file as UTF-8"
        ) from e


def load_yaml_file(path: Path, max_bytes: int = MAX_YAML_FILE_BYTES) -> Any:
    """The YAML document in `path` (safe loader), or `YamlFileError` in one line."""
    text = read_text_file(path, max_bytes)
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise YamlFileError(yaml_problem(path, text, e)) from e


def yaml_problem(path: Path, text: str, error: yaml.YAMLError) -> str:
    """`file:line:col: invalid YAML: what` on one line, whatever PyYAML's wording."""
    line = column = None
    if isinstance(error, yaml.MarkedYAMLError):
        mark = error.problem_mark or error.context_mark
        if mark is not None:
            line, column = mark.line + 1, mark.column + 1
        what = ", ".join(part for part in (error.context, error.problem) if part)
    elif isinstance(error, yaml.reader.ReaderError):
        before = text[: error.position]
        line = before.count("\n") + 1
        column = error.position - (before.rfind("\n") + 1) + 1
        character = error.character
        code = f"#x{character:04x}" if isinstance(character, int) else repr(character)
        what = f"character {code} is not allowed ({error.reason})"
    else:
        what = str(error)
    what = " ".join(what.split()) or "unreadable"
    where = f"{path}:{line}:{column}" if line is not None else str(path)
    return f"{where}: invalid YAML: {what}"
