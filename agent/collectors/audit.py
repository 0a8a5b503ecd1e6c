"""The `audit` domain: the kernel audit system's state and the rules loaded in it.

`auditctl -s` gives `enabled` (0 off, 1 on, 2 on and locked until reboot) and
`auditctl -l` the loaded rules, what the kernel enforces now (not what
/etc/audit/rules.d would load at the next start). Both need root (CAP_AUDIT_CONTROL):
without it the values are null with a `permission` entry. Watches (`-w PATH`, and
`-F path=`/`-F dir=` rules, which auditctl prints as `-w`) are listed so rules can ask
whether the account files are watched.
"""

from __future__ import annotations

import re
from typing import Any

from agent.collectors.base import (
    CollectContext,
    Collected,
    CollectorError,
    Issue,
    clip,
    host_has,
    run_tool,
)

AUDITCTL = ("/sbin/auditctl", "/usr/sbin/auditctl")
TIMEOUT = 10.0
MAX_RULES = 1024
MAX_WATCHES = 256


def collect_audit(ctx: CollectContext) -> Collected:
    if not host_has(ctx, *AUDITCTL):
        return Collected(
            {"installed": False, "enabled": None, "rule_count": None, "watched_paths": None}
        )
    issues: list[Issue] = []
    data: dict[str, Any] = {"installed": True}
    try:
        data["enabled"] = parse_status(run_tool(ctx, ["auditctl", "-s"], TIMEOUT)).get("enabled")
    except CollectorError as e:
        issues.append(Issue(e.kind, f"auditctl -s: {e.reason}"))
        data["enabled"] = None
    try:
        rules = parse_rules(run_tool(ctx, ["auditctl", "-l"], TIMEOUT))
        data["rule_count"] = len(rules)
        data["watched_paths"] = watched_paths(rules)
    except CollectorError as e:
        issues.append(Issue(e.kind, f"auditctl -l: {e.reason}"))
        data["rule_count"] = data["watched_paths"] = None
    return Collected(data, tuple(issues))


def parse_status(text: str) -> dict[str, int]:
    """`auditctl -s`: "key value" lines; the numeric ones."""
    values: dict[str, int] = {}
    for line in text.splitlines():
        words = line.split()
        if len(words) >= 2 and re.fullmatch(r"\d+", words[1]):
            values[words[0]] = int(words[1])
    return values


def parse_rules(text: str) -> list[str]:
    """`auditctl -l`: one rule per line; "No rules" when none is loaded."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return [] if lines == ["No rules"] else lines[:MAX_RULES]


def watched_paths(rules: list[str]) -> list[str]:
    paths: list[str] = []
    for rule in rules:
        match = re.match(r"-w\s+(\S+)", rule) or re.search(r"-F\s+(?:path|dir)=(\S+)", rule)
        if match and match.group(1) not in paths:
            paths.append(clip(match.group(1), 512))
    return paths[:MAX_WATCHES]
