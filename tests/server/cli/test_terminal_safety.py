"""The collector's CLI prints names from its database escaped (issue 14).

Run for real (the console script in a subprocess, a real SQLite file): a token name
with an ANSI sequence and a newline, and an agency name with a bidi override, come
out as visible escapes; the table keeps one line per row.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from rules.terminal import printable

SERVER = Path(sys.executable).parent / "canhgac-server"
HOSTILE_NAME = "web01\x1b[2J\x1b[31m\nfake-row  so-x  active"
BIDI_NAME = "S\u1edf T\u01b0 ph\u00e1p \u202eevil"


def _cli(*args: str) -> str:
    done = subprocess.run(
        [str(SERVER), *args], capture_output=True, text=True, check=True, timeout=60
    )
    return done.stdout


def test_token_list_escapes_names(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'canhgac.db'}"
    _cli("token", "create", "--db", db, "--agency", "so-test", "--name", HOSTILE_NAME)
    out = _cli("token", "list", "--db", db)
    assert "\x1b" not in out
    assert "\\x1b[2J\\x1b[31m\\x0afake-row" in out
    assert len(out.strip().splitlines()) == 2  # the header and the one token


def test_agency_names_are_escaped_where_printed(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'canhgac.db'}"
    added = _cli("agency", "add", "--db", db, "so-tp", "--name", BIDI_NAME)
    listed = _cli("agency", "list", "--db", db)
    for out in (added, listed):
        assert "\u202e" not in out
        assert "S\u1edf T\u01b0 ph\u00e1p \\u202eevil" in out  # Vietnamese letters kept


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("plain-host", "plain-host"),
        ("m\u00e1y-ch\u1ee7", "m\u00e1y-ch\u1ee7"),
        ("a\tb", "a\\x09b"),
        ("a\x9bb", "a\\x9bb"),
        ("a\u200bb", "a\\u200bb"),
        ("a\u2028b", "a\\u2028b"),
        ("a\U000e0001b", "a\\U000e0001b"),
    ],
)
def test_printable(raw: str, shown: str) -> None:
    assert printable(raw) == shown
