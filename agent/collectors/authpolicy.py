"""The `auth_policy` domain: password ageing, hashing and umask defaults from
/etc/login.defs, and the PAM password stack: password quality (pam_pwquality,
pam_cracklib), lockout after failed logins (pam_faillock, pam_tally2) and the hash
pam_unix writes.

PAM files: Debian/Ubuntu's common-password and common-auth, else the RHEL family's
system-auth and password-auth. A module's arguments override its configuration file
(/etc/security/pwquality.conf and its .d directory, /etc/security/faillock.conf),
which overrides the module's built-in default, as the modules themselves apply them.
"""

from __future__ import annotations

import re
from typing import Any

from agent.collectors.base import (
    CollectContext,
    Collected,
    ErrorKind,
    Issue,
    list_dir,
    read_file_or_issue,
)

LOGIN_DEFS = "/etc/login.defs"
PAM_STACKS = (
    ("debian", ("/etc/pam.d/common-password", "/etc/pam.d/common-auth")),
    ("rhel", ("/etc/pam.d/system-auth", "/etc/pam.d/password-auth")),
)
# shadow-utils' values when login.defs leaves a setting out
LOGIN_DEFAULTS = {
    "PASS_MAX_DAYS": "99999",
    "PASS_MIN_DAYS": "0",
    "PASS_WARN_AGE": "7",
    "UMASK": "022",
}
QUALITY_MODULES = {"pam_pwquality.so": 8, "pam_cracklib.so": 9}  # module -> default minlen
LOCKOUT_MODULES = ("pam_faillock.so", "pam_tally2.so")
FAILLOCK_DEFAULT_DENY = 3
PamLine = tuple[str, str, str, list[str]]  # type, control, module, arguments
HASHES = ("yescrypt", "gost_yescrypt", "sha512", "sha256", "blowfish", "bigcrypt", "md5")


def collect_auth_policy(ctx: CollectContext) -> Collected:
    issues: list[Issue] = []
    login_defs = _login_defs(ctx, issues)
    pam = _pam(ctx, issues)
    data = {"login_defs": login_defs, "pam": pam}
    encrypt = login_defs["encrypt_method"]
    if pam is not None and pam["password_hash"] is None and encrypt is not None:
        # pam_unix without a hash option uses login.defs' ENCRYPT_METHOD (PAM 1.4+)
        pam["password_hash"] = encrypt
    return Collected(data, tuple(issues))


def parse_key_values(text: str) -> dict[str, str]:
    """login.defs(5) or pwquality.conf(5): "KEY value" or "key = value" lines."""
    values: dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        words = line.replace("=", " ", 1).split(None, 1)  # login.defs separates with tabs
        values[words[0]] = words[1].strip() if len(words) > 1 else ""
    return values


def _login_defs(ctx: CollectContext, issues: list[Issue]) -> dict[str, Any]:
    before = len(issues)
    text = read_file_or_issue(ctx, LOGIN_DEFS, issues, "login.defs")
    if text is None and len(issues) > before:  # denied or failed: unknown
        nulls = ("pass_max_days", "pass_min_days", "pass_warn_age", "encrypt_method", "umask")
        return {"present": None, **dict.fromkeys(nulls)}
    # an absent file leaves shadow-utils' built-in defaults in force
    values = {**LOGIN_DEFAULTS, **parse_key_values(text or "")}
    umask = values.get("UMASK")
    return {
        "present": text is not None,
        "pass_max_days": _int(values["PASS_MAX_DAYS"]),
        "pass_min_days": _int(values["PASS_MIN_DAYS"]),
        "pass_warn_age": _int(values["PASS_WARN_AGE"]),
        "encrypt_method": values["ENCRYPT_METHOD"].lower() if "ENCRYPT_METHOD" in values else None,
        "umask": umask.lstrip("0").rjust(3, "0")
        if umask and re.fullmatch(r"0?[0-7]{3}", umask)
        else None,
    }


def parse_pam(text: str) -> list[PamLine]:
    """PAM lines as (type, control, module, arguments); "[...]" controls kept whole."""
    lines: list[PamLine] = []
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line or line.startswith("@"):
            continue
        match = re.match(r"-?(\w+)\s+(\[[^\]]*\]|\S+)\s+(\S+)\s*(.*)", line)
        if match:
            kind, control, module, rest = match.groups()
            lines.append((kind, control, module.rsplit("/", 1)[-1], rest.split()))
    return lines


def _pam(ctx: CollectContext, issues: list[Issue]) -> dict[str, Any] | None:
    for family, files in PAM_STACKS:
        if not ctx.path(files[0]).exists():
            continue
        lines: list[PamLine] = []
        for name in files:
            lines += parse_pam(read_file_or_issue(ctx, name, issues, "pam") or "")
        return {"stack": family, **_quality(ctx, lines, issues), **_lockout(ctx, lines, issues)}
    issues.append(
        Issue(ErrorKind.UNSUPPORTED, "pam: neither common-password nor system-auth in /etc/pam.d")
    )
    return None


def _args(arguments: list[str]) -> dict[str, str]:
    values: dict[str, str] = {}
    for argument in arguments:
        key, _, value = argument.partition("=")
        values[key] = value
    return values


def _quality(ctx: CollectContext, lines: list[PamLine], issues: list[Issue]) -> dict[str, Any]:
    password = [line for line in lines if line[0] == "password"]
    unix = next((line for line in password if line[2] == "pam_unix.so"), None)
    hashing = next((a for a in (unix[3] if unix else []) if a in HASHES), None)
    remember = _int(_args(unix[3]).get("remember", "")) if unix else None
    module = next((line for line in password if line[2] in QUALITY_MODULES), None)
    if module is None:
        return {"password_hash": hashing, "remember": remember, "quality_module": None,
                "min_length": None, "min_classes": None}  # fmt: skip
    settings: dict[str, str] = {}
    if module[2] == "pam_pwquality.so":
        conf_files = ["/etc/security/pwquality.conf"]
        conf_files += [
            f"/etc/security/pwquality.conf.d/{n}"
            for n in list_dir(ctx, "/etc/security/pwquality.conf.d", issues, "pam")
            if n.endswith(".conf")
        ]
        for name in conf_files:
            settings.update(parse_key_values(read_file_or_issue(ctx, name, issues, "pam") or ""))
    settings.update(_args(module[3]))
    return {
        "password_hash": hashing,
        "remember": remember,
        "quality_module": module[2].removesuffix(".so"),
        "min_length": _int(settings.get("minlen", str(QUALITY_MODULES[module[2]]))),
        "min_classes": _int(settings.get("minclass", "0")),
    }


def _lockout(ctx: CollectContext, lines: list[PamLine], issues: list[Issue]) -> dict[str, Any]:
    auth = [line for line in lines if line[0] == "auth" and line[2] in LOCKOUT_MODULES]
    if not auth:
        return {"lockout_module": None, "lockout_deny": None, "lockout_unlock_seconds": None}
    module = auth[0][2]
    settings: dict[str, str] = {}
    if module == "pam_faillock.so":
        text = read_file_or_issue(ctx, "/etc/security/faillock.conf", issues, "pam") or ""
        settings.update(parse_key_values(text))
        settings.setdefault("deny", str(FAILLOCK_DEFAULT_DENY))
        settings.setdefault("unlock_time", "600")
    for line in auth:
        settings.update(_args(line[3]))
    return {
        "lockout_module": module.removesuffix(".so"),
        "lockout_deny": _int(settings.get("deny", "")),
        "lockout_unlock_seconds": _int(settings.get("unlock_time", "")),
    }


def _int(value: str) -> int | None:
    value = value.strip()
    return int(value) if re.fullmatch(r"-?\d+", value) else None
