"""The `sysctl` domain: the kernel's running values of the hardening parameters.

Each parameter is read from its file under /proc/sys (`net.ipv4.ip_forward` is
/proc/sys/net/ipv4/ip_forward) through the read helpers, so a denied or failed read is
an `errors` entry naming the file and the value is null (unknown). A parameter this
kernel does not have (no IPv6, no Yama) is null too and listed in `unavailable`, so a
rule can tell "the kernel lacks it" from "could not read it". The values are the
running ones, not what /etc/sysctl.d would set at the next boot.

The document nests the names at their dots (`sysctl.net.ipv4.ip_forward`), the way
the rule language reads paths.
"""

from __future__ import annotations

from typing import Any

from agent.collectors.base import CollectContext, Collected, ErrorKind, Issue, read_file_or_issue

# The parameters read: kernel self-protection, core dumps and the IPv4/IPv6 network
# stack (CIS Benchmarks' and Lynis's KRNL-6000 lists, the ones a rule here judges).
PARAMETERS = (
    "kernel.randomize_va_space",
    "kernel.dmesg_restrict",
    "kernel.kptr_restrict",
    "kernel.yama.ptrace_scope",
    "kernel.unprivileged_bpf_disabled",
    "fs.suid_dumpable",
    "fs.protected_hardlinks",
    "fs.protected_symlinks",
    "net.ipv4.ip_forward",
    "net.ipv4.conf.all.accept_redirects",
    "net.ipv4.conf.default.accept_redirects",
    "net.ipv4.conf.all.secure_redirects",
    "net.ipv4.conf.all.send_redirects",
    "net.ipv4.conf.default.send_redirects",
    "net.ipv4.conf.all.accept_source_route",
    "net.ipv4.conf.default.accept_source_route",
    "net.ipv4.conf.all.rp_filter",
    "net.ipv4.conf.all.log_martians",
    "net.ipv4.tcp_syncookies",
    "net.ipv4.icmp_echo_ignore_broadcasts",
    "net.ipv6.conf.all.accept_redirects",
    "net.ipv6.conf.default.accept_redirects",
    "net.ipv6.conf.all.accept_source_route",
    "net.ipv6.conf.all.forwarding",
)
MAX_BYTES = 256


def proc_path(name: str) -> str:
    return "/proc/sys/" + name.replace(".", "/")


def collect_sysctl(ctx: CollectContext) -> Collected:
    issues: list[Issue] = []
    data: dict[str, Any] = {}
    unavailable: list[str] = []
    for name in PARAMETERS:
        path = proc_path(name)
        before = len(issues)
        text = read_file_or_issue(ctx, path, issues, "sysctl", MAX_BYTES)
        value: int | None = None
        if text is None:
            if len(issues) == before:
                unavailable.append(name)
        else:
            try:
                value = int(text.split()[0])
            except (ValueError, IndexError):
                issues.append(Issue(ErrorKind.FAILED, f"sysctl: {path}: not an integer: {text!r}"))
        _put(data, name, value)
    data["unavailable"] = unavailable
    return Collected(data, tuple(issues))


def _put(tree: dict[str, Any], name: str, value: int | None) -> None:
    *parents, leaf = name.split(".")
    for part in parents:
        tree = tree.setdefault(part, {})
    tree[leaf] = value


def parse_sysctl_a(text: str) -> dict[str, str]:
    """`sysctl -a` ("name = value" lines) as a mapping; for building test roots and for
    comparing with what the collector read."""
    values: dict[str, str] = {}
    for line in text.splitlines():
        name, sep, value = line.partition(" = ")
        if sep:
            values[name.strip()] = value.strip()
    return values
