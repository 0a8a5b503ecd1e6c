"""The `ssh` domain: the effective OpenSSH server configuration.

`sshd -T` prints what sshd would really use (defaults, Include files and
crypto-policies applied); it needs root (it loads the host keys). Otherwise the
configuration files are parsed here, the way sshd reads them:

- keywords are case-insensitive and the FIRST value obtained wins (sshd_config(5)),
  except `Port`, which accumulates;
- `Include` takes globs (relative paths are under /etc/ssh), read in lexical order at
  the point of the directive, up to 16 levels deep;
- `Match` blocks are conditional: their contents are NOT applied (the report is the
  configuration for a connection no Match selects), and a Match inside an included
  file ends at the end of that file;
- unset keywords take OpenSSH 9.x defaults; algorithm lists accept the `+`, `-` and
  `^` modifiers against those defaults.
"""

from __future__ import annotations

import fnmatch
import re
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
    run_tool,
)

SSHD_BINARIES = ("/usr/sbin/sshd", "/usr/bin/sshd", "/sbin/sshd")
CONFIG = "/etc/ssh/sshd_config"
MAX_INCLUDE_DEPTH = 16

# OpenSSH 9.2's defaults (`sshd -T` with an empty configuration, Debian 12).
DEFAULTS: dict[str, str] = {
    "permitrootlogin": "prohibit-password",
    "passwordauthentication": "yes",
    "pubkeyauthentication": "yes",
    "permitemptypasswords": "no",
    "x11forwarding": "no",
    "maxauthtries": "6",
    "clientaliveinterval": "0",
    "clientalivecountmax": "3",
    "ciphers": "chacha20-poly1305@openssh.com,aes128-ctr,aes192-ctr,aes256-ctr,"
    "aes128-gcm@openssh.com,aes256-gcm@openssh.com",
    "macs": "umac-64-etm@openssh.com,umac-128-etm@openssh.com,hmac-sha2-256-etm@openssh.com,"
    "hmac-sha2-512-etm@openssh.com,hmac-sha1-etm@openssh.com,umac-64@openssh.com,"
    "umac-128@openssh.com,hmac-sha2-256,hmac-sha2-512,hmac-sha1",
    "kexalgorithms": "sntrup761x25519-sha512,sntrup761x25519-sha512@openssh.com,"
    "curve25519-sha256,curve25519-sha256@libssh.org,ecdh-sha2-nistp256,ecdh-sha2-nistp384,ecdh-sha2-nistp521,"
    "diffie-hellman-group-exchange-sha256,diffie-hellman-group16-sha512,"
    "diffie-hellman-group18-sha512,diffie-hellman-group14-sha256",
    "hostkeyalgorithms": "ssh-ed25519-cert-v01@openssh.com,"
    "ecdsa-sha2-nistp256-cert-v01@openssh.com,ecdsa-sha2-nistp384-cert-v01@openssh.com,ecdsa-sha2-nistp521-cert-v01@openssh.com,"
    "sk-ssh-ed25519-cert-v01@openssh.com,sk-ecdsa-sha2-nistp256-cert-v01@openssh.com,"
    "rsa-sha2-512-cert-v01@openssh.com,rsa-sha2-256-cert-v01@openssh.com,ssh-ed25519,"
    "ecdsa-sha2-nistp256,ecdsa-sha2-nistp384,ecdsa-sha2-nistp521,sk-ssh-ed25519@openssh.com,"
    "sk-ecdsa-sha2-nistp256@openssh.com,rsa-sha2-512,rsa-sha2-256",
}
_LISTS = ("ciphers", "macs", "kexalgorithms", "hostkeyalgorithms")
# Access lists accumulate over every line (sshd -T prints one entry per line).
_ACCESS = ("allowusers", "allowgroups", "denyusers", "denygroups")
_TIME_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
# Older spellings sshd -T and configurations still use.
_ROOT_LOGIN = {"without-password": "prohibit-password"}


def collect_ssh(ctx: CollectContext) -> Collected:
    binary = next((b for b in SSHD_BINARIES if ctx.path(b).exists()), None)
    if binary is None and not ctx.path(CONFIG).exists():
        return Collected({"installed": False})
    issues: list[Issue] = []
    if binary is not None:
        try:
            values = parse_sshd_t(run_tool(ctx, [binary, "-T"], 10.0))
            return Collected(_facts("sshd -T", values), ())
        except CollectorError as e:
            # sshd -T loads the host keys, which only root can read.
            kind = e.kind if ctx.system.is_privileged() else ErrorKind.PERMISSION
            issues.append(Issue(kind, f"sshd -T failed ({e.reason}); read {CONFIG} instead"))
    try:
        values = parse_config(ctx, issues)
    except CollectorError as e:
        # Without the main file there is no configuration to report (a denied one is
        # kind permission, naming it).
        raise CollectorError(e.kind, f"cannot read {e.reason}") from e
    return Collected(_facts("sshd_config", values), tuple(issues))


def parse_sshd_t(text: str) -> dict[str, list[str]]:
    """`sshd -T`: one "keyword value" per line, lowercase keywords; repeated for ports."""
    values: dict[str, list[str]] = {}
    for line in text.splitlines():
        key, _, value = line.strip().partition(" ")
        if key:
            values.setdefault(key.lower(), []).append(value.strip())
    if "port" not in values:
        raise CollectorError(ErrorKind.FAILED, "sshd -T printed no configuration")
    return values


MAX_INCLUDED_FILES = 256


def parse_config(ctx: CollectContext, issues: list[Issue]) -> dict[str, list[str]]:
    reader = _ConfigReader(ctx, issues)
    reader.read(CONFIG, ())
    return reader.values


class _ConfigReader:
    """sshd_config with its Includes; Match blocks skipped; first value wins (as sshd)."""

    def __init__(self, ctx: CollectContext, issues: list[Issue]) -> None:
        self.ctx = ctx
        self.issues = issues
        self.values: dict[str, list[str]] = {}
        # Fan-out is capped as well as depth: three files that each include the
        # directory, 16 levels deep, would otherwise be millions of reads.
        self.files_left = MAX_INCLUDED_FILES

    def read(self, path: str, stack: tuple[str, ...]) -> None:
        if path in stack:  # a file including itself is an error for sshd too
            chain = " -> ".join([*stack, path])
            self.issues.append(Issue(ErrorKind.FAILED, f"{path}: Include loop ({chain})"))
            return
        if self.files_left <= 0:
            limit = MAX_INCLUDED_FILES
            self.issues.append(Issue(ErrorKind.FAILED, f"{path}: more than {limit} files"))
            return
        self.files_left -= 1
        in_match = False
        text = read_file(self.ctx, path)
        if text is None:
            raise CollectorError(ErrorKind.FAILED, f"{path}: no such file")
        for raw in text.splitlines():
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            # "Keyword value" or "Keyword=value".
            parts = re.split(r"[\s=]+", line, maxsplit=1)
            key, rest = parts[0].lower(), (parts[1] if len(parts) > 1 else "").strip().strip('"')
            in_match = in_match or key == "match"
            if in_match:
                continue
            if key == "include":
                self.include(rest, (*stack, path))
            elif key == "port" or key in _ACCESS:
                self.values.setdefault(key, []).append(rest)
            elif key not in self.values:
                self.values[key] = [rest]

    def include(self, patterns: str, stack: tuple[str, ...]) -> None:
        if len(stack) > MAX_INCLUDE_DEPTH:
            self.issues.append(Issue(ErrorKind.FAILED, f"{stack[-1]}: Include nested too deeply"))
            return
        for pattern in patterns.split():
            for included in _expand(self.ctx, pattern, self.issues):
                try:
                    self.read(included, stack)
                except CollectorError as e:
                    self.issues.append(e.issue)


def _expand(ctx: CollectContext, pattern: str, issues: list[Issue]) -> list[str]:
    absolute = pattern if pattern.startswith("/") else f"/etc/ssh/{pattern}"
    directory, _, name = absolute.rpartition("/")
    if not any(c in name for c in "*?["):
        return [absolute]
    names = list_dir(ctx, directory or "/", issues, "Include")
    return [f"{directory}/{n}" for n in names if fnmatch.fnmatchcase(n, name)]


def _algorithms(value: str | None, default: str) -> list[str]:
    base = default.split(",")
    if not value:
        return base
    head, body = value[0], value[1:]
    wanted = [v for v in body.split(",") if v]
    if head == "+":
        return base + [w for w in wanted if w not in base]
    if head == "-":
        return [b for b in base if not any(fnmatch.fnmatchcase(b, w) for w in wanted)]
    if head == "^":
        return wanted + [b for b in base if b not in wanted]
    return [v for v in value.split(",") if v]


def sshd_seconds(value: str) -> int | None:
    """sshd_config(5) TIME FORMATS ("300", "5m", "1h30m"); None when unparsable."""
    parts = re.findall(r"(\d+)([smhdwSMHDW]?)", value.strip())
    if not parts or "".join(n + u for n, u in parts) != value.strip():
        return None
    return sum(int(number) * _TIME_UNITS[unit.lower()] for number, unit in parts)


def _integer(value: str) -> int | None:
    return int(value) if value.strip().isdigit() else None


def _yes(value: str) -> bool:
    return value.lower() == "yes"


def _facts(source: str, values: dict[str, list[str]]) -> dict[str, Any]:
    def first(key: str) -> str:
        return (values.get(key) or [DEFAULTS.get(key, "")])[0]

    ports = []
    for port in values.get("port") or ["22"]:
        ports += [int(p) for p in port.split() if p.isdigit() and int(p) < 65536]
    root = first("permitrootlogin").lower()
    try:
        max_tries = int(first("maxauthtries"))
    except ValueError:
        max_tries = 6
    facts: dict[str, Any] = {
        "installed": True,
        "source": source,
        "permit_root_login": _ROOT_LOGIN.get(root, root),
        "password_authentication": _yes(first("passwordauthentication")),
        "pubkey_authentication": _yes(first("pubkeyauthentication")),
        "permit_empty_passwords": _yes(first("permitemptypasswords")),
        "x11_forwarding": _yes(first("x11forwarding")),
        "max_auth_tries": max_tries,
        "client_alive_interval": sshd_seconds(first("clientaliveinterval")),
        "client_alive_count_max": _integer(first("clientalivecountmax")),
        "ports": sorted(set(ports))[:64],
    }
    for key, name in zip(
        _ACCESS, ("allow_users", "allow_groups", "deny_users", "deny_groups"), strict=True
    ):
        entries = [entry for line in values.get(key, []) for entry in line.split()]
        facts[name] = [clip(entry, 256) for entry in entries][:256]
    for key, name in zip(
        _LISTS, ("ciphers", "macs", "kex_algorithms", "host_key_algorithms"), strict=True
    ):
        raw = values[key][0] if values.get(key) else None
        facts[name] = [clip(a, 128) for a in _algorithms(raw, DEFAULTS[key])][:128]
    return facts
