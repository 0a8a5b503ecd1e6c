"""The `core_dumps` domain: whether programs may write core dumps, which hold whatever
was in their memory (passwords, keys, personal data).

- the hard `core` limit for every user (`*` or the default) in
  /etc/security/limits.conf and /etc/security/limits.d/*.conf (later files and later
  lines win, as pam_limits applies them); null when none sets it (the kernel's default,
  unlimited, then applies);
- `kernel.core_pattern`: a leading `|` pipes dumps to a handler program (its name is
  reported, `systemd-coredump` on most systemd hosts);
- systemd-coredump's `Storage=` (default `external`: dumps kept under
  /var/lib/systemd/coredump) from coredump.conf and its drop-ins.
"""

from __future__ import annotations

from typing import Any

from agent.collectors.base import (
    CollectContext,
    Collected,
    Issue,
    list_dir,
    read_file_or_issue,
)

LIMITS = "/etc/security/limits.conf"
LIMITS_DIR = "/etc/security/limits.d"
COREDUMP_FILES = ("/etc/systemd/coredump.conf",)
COREDUMP_DIRS = (
    "/usr/lib/systemd/coredump.conf.d",
    "/run/systemd/coredump.conf.d",
    "/etc/systemd/coredump.conf.d",
)


def collect_core_dumps(ctx: CollectContext) -> Collected:
    issues: list[Issue] = []
    pattern = read_file_or_issue(ctx, "/proc/sys/kernel/core_pattern", issues, "core_pattern")
    handler = None
    if pattern is not None and pattern.startswith("|"):
        words = pattern[1:].split()
        handler = words[0].rsplit("/", 1)[-1] if words else None
    data: dict[str, Any] = {
        "hard_limit": _hard_limit(ctx, issues),
        "core_pattern": pattern.strip()[:256] if pattern is not None else None,
        "handler": handler,
        "systemd_storage": _storage(ctx, issues),
    }
    return Collected(data, tuple(issues))


def parse_limits(text: str) -> str | None:
    """The last hard (or both, `-`) `core` limit for every user in a limits.conf text."""
    value = None
    for raw in text.splitlines():
        words = raw.split("#", 1)[0].split()
        if len(words) == 4 and words[0] == "*" and words[1] in ("hard", "-") and words[2] == "core":
            value = words[3]
    return value


def _hard_limit(ctx: CollectContext, issues: list[Issue]) -> str | None:
    names = [LIMITS] + [
        f"{LIMITS_DIR}/{n}"
        for n in list_dir(ctx, LIMITS_DIR, issues, "limits")
        if n.endswith(".conf")
    ]
    value = None
    for name in names:
        found = parse_limits(read_file_or_issue(ctx, name, issues, "limits") or "")
        value = found if found is not None else value
    return value


def _storage(ctx: CollectContext, issues: list[Issue]) -> str | None:
    before = len(issues)
    files = list(COREDUMP_FILES)
    for directory in COREDUMP_DIRS:
        names = list_dir(ctx, directory, issues, "coredump")
        files += [f"{directory}/{n}" for n in names if n.endswith(".conf")]
    storage = "external"
    for name in files:
        for raw in (read_file_or_issue(ctx, name, issues, "coredump") or "").splitlines():
            key, sep, value = raw.strip().partition("=")
            if sep and key.strip() == "Storage":
                storage = value.strip().lower()
    return storage if len(issues) == before else None  # a file unread: unknown
