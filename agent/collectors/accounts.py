"""The `accounts` domain: local users, their password state and maximum age, UID 0
accounts, and NOPASSWD sudo rules.

Reads /etc/passwd, /etc/shadow (root only: without it every password is "unknown"
and one `permission` entry says so) and sudoers with its include directories.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from agent.collectors.base import (
    CollectContext,
    Collected,
    CollectorError,
    ErrorKind,
    Issue,
    clip,
    list_dir,
    read_file,
    read_file_or_issue,
)

NOLOGIN_SHELLS = frozenset(
    [
        "/usr/sbin/nologin",
        "/sbin/nologin",
        "/bin/false",
        "/usr/bin/false",
        "/bin/sync",
        "/usr/bin/sync",
        "/sbin/shutdown",
        "/sbin/halt",
    ]
)
MAX_USERS = 10000
MAX_SUDO = 1000
_INCLUDE = re.compile(r"^[#@]include(dir)?\s+(\S+)")


def collect_accounts(ctx: CollectContext) -> Collected:
    issues: list[Issue] = []
    try:
        passwd = read_file(ctx, "/etc/passwd", 16 * 1024 * 1024)
    except CollectorError as e:
        raise CollectorError(e.kind, f"cannot read {e.reason}") from e
    if passwd is None:
        raise CollectorError(ErrorKind.FAILED, "cannot read /etc/passwd: No such file or directory")
    shadow: dict[str, list[str]] | None = None
    try:
        shadow_text = read_file(ctx, "/etc/shadow", 16 * 1024 * 1024)
    except CollectorError as e:
        shadow_text = None
        issues.append(Issue(e.kind, f"{e.reason}: password states unknown"))
    if shadow_text is not None:
        shadow = parse_colon_file(shadow_text)
    users = [_user(fields, shadow) for fields in parse_colon_file(passwd).values()]
    sudo = nopasswd_entries(ctx, issues)
    if len(users) > MAX_USERS:
        # say so: a rule such as "no empty password" must not pass on a truncated list
        issues.append(Issue(ErrorKind.FAILED, f"{len(users)} accounts; only {MAX_USERS} reported"))
    if len(sudo) > MAX_SUDO:
        issues.append(
            Issue(ErrorKind.FAILED, f"{len(sudo)} NOPASSWD entries; only {MAX_SUDO} reported")
        )
    return Collected(
        {
            "shadow_readable": shadow is not None,
            "users": users[:MAX_USERS],
            "uid0": [u["name"] for u in users if u["uid"] == 0],
            "nopasswd_sudo": sudo[:MAX_SUDO],
        },
        tuple(issues),
    )


def parse_colon_file(text: str) -> dict[str, list[str]]:
    rows: dict[str, list[str]] = {}
    for line in text.splitlines():
        if not line or line.startswith(("#", "+", "-")):
            continue  # NIS compat entries ("+::::::") are not local accounts
        fields = line.split(":")
        rows.setdefault(fields[0], fields)
    return rows


def _int(value: str) -> int | None:
    return int(value) if value.strip().isdigit() else None


def password_state(passwd_field: str, shadow_fields: list[str] | None) -> str:
    """set | locked | empty | unknown, as passwd(1) -S would say."""
    value = shadow_fields[1] if shadow_fields and len(shadow_fields) > 1 else None
    if value is None:
        # Without shadow only an empty passwd field is certain (no password at all).
        return "empty" if passwd_field == "" else "unknown"
    if value == "":
        return "empty"
    if value.startswith(("!", "*")):
        return "locked"
    return "set"


def _user(fields: list[str], shadow: dict[str, list[str]] | None) -> dict[str, Any]:
    fields = (fields + [""] * 7)[:7]
    name, pw, uid, gid, _gecos, home, shell = fields
    shadow_fields = shadow.get(name) if shadow is not None else None
    max_days = _int(shadow_fields[4]) if shadow_fields and len(shadow_fields) > 4 else None
    effective_shell = shell or "/bin/sh"  # passwd(5): empty means /bin/sh
    return {
        "name": clip(name, 256),
        "uid": _int(uid),
        "gid": _int(gid),
        "home": clip(home, 4096),
        "shell": clip(shell, 4096),
        "login_shell": effective_shell not in NOLOGIN_SHELLS
        and not effective_shell.endswith("/nologin"),
        "password": password_state(pw, shadow_fields)
        if shadow is not None or pw == ""
        else "unknown",
        "password_max_days": max_days,
    }


def _sudoers_files(ctx: CollectContext, issues: list[Issue]) -> list[tuple[str, str]]:
    """(host path, text) of /etc/sudoers and every file it includes, in order."""
    out: list[tuple[str, str]] = []
    pending = ["/etc/sudoers"]
    seen: set[str] = set()
    while pending and len(seen) < 256:
        host = pending.pop(0)
        if host in seen:
            continue
        seen.add(host)
        text = read_file_or_issue(ctx, host, issues, "nopasswd_sudo")
        if text is None:
            continue
        out.append((host, text))
        for line in text.splitlines():
            match = _INCLUDE.match(line.strip())
            if not match:
                continue
            target = match.group(2)
            if not target.startswith("/"):
                target = str(Path(host).parent / target)
            if match.group(1):  # includedir: files without '.' or trailing '~'
                names = list_dir(ctx, target, issues, "nopasswd_sudo")
                pending.extend(
                    f"{target.rstrip('/')}/{n}"
                    for n in names
                    if "." not in n and not n.endswith("~")
                )
            else:
                pending.append(target)
    return out


def nopasswd_entries(ctx: CollectContext, issues: list[Issue]) -> list[dict[str, Any]]:
    entries = []
    for host, text in _sudoers_files(ctx, issues):
        logical: list[tuple[int, str]] = []
        buffer, start = "", 0
        for number, raw in enumerate(text.splitlines(), 1):
            if not buffer:
                start = number
            if raw.rstrip().endswith("\\"):
                buffer += raw.rstrip()[:-1] + " "
                continue
            logical.append((start, buffer + raw))
            buffer = ""
        for number, line in logical:
            stripped = (
                line.split("#", 1)[0].strip()
                if not line.lstrip().startswith(("#include", "@include"))
                else ""
            )
            if "NOPASSWD:" not in stripped or stripped.startswith("Defaults"):
                continue
            principal = stripped.split()[0]
            commands = stripped.split("NOPASSWD:", 1)[1].strip()
            command_list = [c.strip() for c in commands.split(",")]
            entries.append(
                {
                    "source": clip(f"{host}:{number}", 4096),
                    "principal": clip(principal, 256),
                    "commands": clip(commands, 4096),
                    "all_commands": "ALL" in command_list,
                }
            )
    return entries
