"""The `firewall` domain: which packet filters are active, their default input policy
and how many rules they hold: nftables, iptables, ufw and firewalld.

ufw and firewalld are front ends that program nftables or iptables; when one of them
is active it is reported as THE backend (it is what an administrator manages), else
nftables, else iptables. Listing rules needs root (CAP_NET_ADMIN); without it the
kernel tools fail and a `permission` entry says so.

"No firewall" must be known, never assumed: when no front end is active and neither
`nft` nor `iptables-save` could list the kernel's tables (not installed, denied,
failed), the domain is unknown and the collector fails with every tool's reason, so
the firewall rules are in error rather than reporting `active: false`.
"""

from __future__ import annotations

import json
import re
from typing import Any

from agent.collectors.base import (
    CollectContext,
    Collected,
    CollectorError,
    ErrorKind,
    Issue,
    host_has,
    read_file,
    read_file_or_issue,
    run_tool,
)

TIMEOUT = 15.0
PRIORITY = ("firewalld", "ufw", "nftables", "iptables")
KERNEL_TOOLS = ("nftables", "iptables")
_POLICY = {"accept": "accept", "drop": "drop", "reject": "reject"}


def collect_firewall(ctx: CollectContext) -> Collected:
    issues: list[Issue] = []
    backends: list[dict[str, Any]] = []
    kernel_unread: list[CollectorError] = []  # nftables/iptables that could not be read
    for name, probe in (
        ("nftables", _nftables),
        ("iptables", _iptables),
        ("ufw", lambda c: _ufw(c, issues)),
        ("firewalld", _firewalld),
    ):
        try:
            found = probe(ctx)
        except CollectorError as e:
            if name in KERNEL_TOOLS:
                kernel_unread.append(CollectorError(e.kind, f"{name}: {e.reason}"))
            if e.kind is not ErrorKind.UNSUPPORTED:  # not installed: simply absent
                issues.append(Issue(e.kind, f"{name}: {e.reason}"))
            continue
        if found is not None:
            backends.append({"name": name, **found})
    active = [b for b in backends if b["active"]]
    chosen = min(active, key=lambda b: PRIORITY.index(b["name"])) if active else None
    if chosen is None and len(kernel_unread) == len(KERNEL_TOOLS):
        raise _kernel_unknown(kernel_unread)
    return Collected(
        {
            "active": chosen is not None,
            "backend": chosen["name"] if chosen else None,
            "default_input_policy": chosen["default_input_policy"] if chosen else None,
            "rule_count": chosen["rule_count"] if chosen else None,
            "backends": backends,
        },
        tuple(issues),
    )


def _kernel_unknown(failures: list[CollectorError]) -> CollectorError:
    """No front end is active and neither kernel table could be listed: the kernel may
    still hold rules (loaded at boot, by a container runtime...), so "no firewall" is
    not known. The whole domain is then unknown, with each tool's reason."""
    kinds = {f.kind for f in failures}
    kind = next(
        (k for k in (ErrorKind.PERMISSION, ErrorKind.FAILED, ErrorKind.TIMEOUT) if k in kinds),
        ErrorKind.UNSUPPORTED,
    )
    reasons = "; ".join(f.reason for f in failures)
    return CollectorError(
        kind,
        "the kernel's packet filter could not be read, so whether it filters is unknown: "
        + reasons,
    )


def parse_nft_json(text: str) -> dict[str, Any]:
    """`nft -j list ruleset`: rules counted; the input policy of the base chains on the
    input hook (any drop wins: a packet must pass every such chain)."""
    try:
        entries = json.loads(text).get("nftables", [])
    except (ValueError, AttributeError) as e:
        raise CollectorError(ErrorKind.FAILED, f"nft printed invalid JSON: {e}") from e
    rules = 0
    policies: list[str] = []
    for entry in entries:
        if "rule" in entry:
            rules += 1
        chain = entry.get("chain")
        if (
            isinstance(chain, dict)
            and chain.get("hook") == "input"
            and chain.get("type") == "filter"
        ):
            policies.append(str(chain.get("policy", "accept")))
    return {
        "active": rules > 0 or bool(policies),
        "default_input_policy": _combine(policies),
        "rule_count": rules,
    }


def _combine(policies: list[str]) -> str | None:
    if not policies:
        return None
    return "drop" if "drop" in policies else _POLICY.get(policies[0])


def _nftables(ctx: CollectContext) -> dict[str, Any] | None:
    return parse_nft_json(run_tool(ctx, ["nft", "-j", "list", "ruleset"], TIMEOUT))


def parse_iptables_save(text: str) -> dict[str, Any]:
    """`iptables-save`: ":INPUT DROP [0:0]" in *filter sets the policy; "-A" lines are rules."""
    rules = sum(1 for line in text.splitlines() if line.startswith("-A "))
    policy = None
    table = None
    for line in text.splitlines():
        if line.startswith("*"):
            table = line[1:].strip()
        elif table == "filter" and line.startswith(":INPUT "):
            policy = _POLICY.get(line.split()[1].lower())
    return {
        "active": rules > 0 or policy in ("drop", "reject"),
        "default_input_policy": policy,
        "rule_count": rules,
    }


def _iptables(ctx: CollectContext) -> dict[str, Any] | None:
    return parse_iptables_save(run_tool(ctx, ["iptables-save"], TIMEOUT))


def _ufw(ctx: CollectContext, issues: list[Issue]) -> dict[str, Any] | None:
    """ufw's own files: whether it is enabled, its default input policy, its rules.

    ufw.conf is readable by all; a denied one raises (ufw is then not reported, with a
    `permission` entry). The rules files are root's only: without them the rule count
    is null and the denial an entry, never a silent "no rules".
    """
    conf = read_file(ctx, "/etc/ufw/ufw.conf")
    if conf is None:
        return None
    enabled = re.search(r"^\s*ENABLED\s*=\s*\"?yes", conf, re.MULTILINE | re.IGNORECASE) is not None
    defaults = read_file_or_issue(ctx, "/etc/default/ufw", issues, "ufw") or ""
    match = re.search(r'^\s*DEFAULT_INPUT_POLICY\s*=\s*"?(\w+)', defaults, re.MULTILINE)
    texts: list[str] = []
    count: int | None = None
    before = len(issues)
    for name in ("/etc/ufw/user.rules", "/etc/ufw/user6.rules"):
        texts.append(read_file_or_issue(ctx, name, issues, "ufw") or "")
    if len(issues) == before:  # both read (or absent: no rules added yet)
        lines = "\n".join(texts).splitlines()
        count = sum(1 for line in lines if line.startswith("-A ufw-user-input"))
    return {
        "active": enabled,
        "default_input_policy": _POLICY.get(match.group(1).lower()) if match else None,
        "rule_count": count,
    }


def _firewalld(ctx: CollectContext) -> dict[str, Any] | None:
    if not host_has(ctx, "/usr/sbin/firewalld", "/usr/bin/firewall-cmd"):
        return None
    state = run_tool(ctx, ["firewall-cmd", "--state"], TIMEOUT, ok_codes=(0, 252)).strip()
    if state != "running":
        return {"active": False, "default_input_policy": None, "rule_count": None}
    zone = run_tool(ctx, ["firewall-cmd", "--get-default-zone"], TIMEOUT).strip()
    target = run_tool(ctx, ["firewall-cmd", f"--zone={zone}", "--get-target"], TIMEOUT).strip()
    # A zone's "default" target rejects what no service or port allows.
    policy = {
        "default": "reject",
        "%%REJECT%%": "reject",
        "REJECT": "reject",
        "DROP": "drop",
        "ACCEPT": "accept",
    }.get(target)
    return {"active": True, "default_input_policy": policy, "rule_count": None}
