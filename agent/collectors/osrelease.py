"""Parsing os-release(5) and deriving the package family of a distribution.

The file is a list of `KEY=value` lines with shell-like quoting: values may be in
double or single quotes, a backslash escapes dollar, double quote, backslash and
backtick inside double quotes, and no variable expansion happens. (`shlex` is close but
keeps the backslash before a dollar or a backtick, so the few rules are written here.)
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Literal

Family = Literal["debian", "rhel", "suse", "arch", "alpine", "other"]

_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")

# Tokens of ID and ID_LIKE per family. Fedora and Amazon Linux are listed with rhel
# because what the family selects downstream is the package tooling (rpm, dnf/yum).
_FAMILIES: dict[str, Family] = {
    "debian": "debian",
    "ubuntu": "debian",
    "raspbian": "debian",
    "linuxmint": "debian",
    "rhel": "rhel",
    "centos": "rhel",
    "fedora": "rhel",
    "rocky": "rhel",
    "almalinux": "rhel",
    "ol": "rhel",
    "amzn": "rhel",
    "suse": "suse",
    "sles": "suse",
    "opensuse": "suse",
    "opensuse-leap": "suse",
    "opensuse-tumbleweed": "suse",
    "arch": "arch",
    "manjaro": "arch",
    "alpine": "alpine",
}

# Defaults os-release(5) prescribes when the file does not set them.
DEFAULTS = {"ID": "linux", "NAME": "Linux", "PRETTY_NAME": "Linux"}


def parse_os_release(text: str) -> dict[str, str]:
    """The assignments of an os-release file; malformed lines are ignored, as systemd does."""
    values: dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.partition("=")
        key = key.strip()
        if not _KEY.fullmatch(key):
            continue
        unquoted = unquote(value.strip())
        if unquoted is not None:
            values[key] = unquoted
    return values


_DOUBLE_QUOTE_ESCAPES = frozenset('$"\\`')


def unquote(value: str) -> str | None:
    """A shell word without its quotes and escapes; None if a quote is left open."""
    out: list[str] = []
    quote: str | None = None
    chars = iter(value)
    for ch in chars:
        if quote == "'":
            if ch == "'":
                quote = None
            else:
                out.append(ch)
        elif quote == '"':
            if ch == '"':
                quote = None
            elif ch == "\\":
                nxt = next(chars, "")
                out.append(nxt if nxt in _DOUBLE_QUOTE_ESCAPES else ch + nxt)
            else:
                out.append(ch)
        elif ch in "'\"":
            quote = ch
        elif ch == "\\":
            out.append(next(chars, ""))
        else:
            out.append(ch)
    return None if quote else "".join(out)


def id_like(values: dict[str, str]) -> list[str]:
    return values.get("ID_LIKE", "").split()


def family_of(os_id: str, like: Iterable[str]) -> Family:
    """The family of the first of ID, then ID_LIKE in order, that is known."""
    for token in (os_id, *like):
        family = _FAMILIES.get(token.lower())
        if family is not None:
            return family
    return "other"
