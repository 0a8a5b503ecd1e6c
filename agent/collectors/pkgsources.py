"""The `package_sources` domain: where packages come from and whether they are verified.

apt: one-line entries in /etc/apt/sources.list and sources.list.d/*.list, and deb822
stanzas in sources.list.d/*.sources. apt checks every repository's signed Release
file against its keys whatever the transport, so plain `http` is acceptable with a
key pinned to the repository (`signed-by`); `trusted=yes` or `allow-insecure=yes`
switches the check off. dnf/yum: /etc/yum.repos.d/*.repo, each repository's
`gpgcheck` (package signatures) falling back to [main] in /etc/dnf/dnf.conf or
/etc/yum.conf (dnf's own default is off; RHEL's shipped dnf.conf turns it on).

Each enabled source is one item: `file`, `uri`, `scheme`, `signed_by` (apt: a key
pinned; null for dnf), `verified` (false when signature checks are off).
"""

from __future__ import annotations

import configparser
import re
from typing import Any

from agent.collectors.base import (
    CollectContext,
    Collected,
    Issue,
    clip,
    list_dir,
    read_file_or_issue,
)

APT_LIST = "/etc/apt/sources.list"
APT_DIR = "/etc/apt/sources.list.d"
YUM_DIR = "/etc/yum.repos.d"
DNF_MAIN = ("/etc/dnf/dnf.conf", "/etc/yum.conf")
MAX_SOURCES = 500
_OPTIONS = re.compile(r"^\[([^\]]*)\]\s*")
_TRUE = ("1", "yes", "true", "on")


def collect_package_sources(ctx: CollectContext) -> Collected:
    issues: list[Issue] = []
    sources: list[dict[str, Any]] = []
    apt_files = [APT_LIST] + [
        f"{APT_DIR}/{n}"
        for n in list_dir(ctx, APT_DIR, issues, "apt")
        if n.endswith((".list", ".sources"))
    ]
    for name in apt_files:
        text = read_file_or_issue(ctx, name, issues, "apt") or ""
        parse = parse_deb822 if name.endswith(".sources") else parse_one_line
        sources += [{"file": name, **s} for s in parse(text)]
    repo_files = [f"{YUM_DIR}/{n}" for n in list_dir(ctx, YUM_DIR, issues, "dnf")]
    if repo_files:
        default = _main_gpgcheck(ctx, issues)
        for name in (n for n in repo_files if n.endswith(".repo")):
            text = read_file_or_issue(ctx, name, issues, "dnf") or ""
            sources += [{"file": name, **s} for s in parse_repo(text, default)]
    return Collected({"sources": sources[:MAX_SOURCES]}, tuple(issues))


def _item(uri: str, signed_by: bool | None, verified: bool) -> dict[str, Any]:
    scheme = uri.split(":", 1)[0].lower() if ":" in uri else None
    return {"uri": clip(uri, 1024), "scheme": scheme, "signed_by": signed_by, "verified": verified}


def parse_one_line(text: str) -> list[dict[str, Any]]:
    """`deb [opts] uri suite [components]` lines (deb-src too)."""
    items = []
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        kind, _, rest = line.partition(" ")
        if kind not in ("deb", "deb-src"):
            continue
        rest = rest.strip()
        options: dict[str, str] = {}
        match = _OPTIONS.match(rest)
        if match:
            for word in match.group(1).split():
                key, _, value = word.partition("=")
                options[key.lower()] = value
            rest = rest[match.end() :]
        uri = rest.split()[0] if rest.split() else ""
        items.append(_apt(uri, options))
    return items


def parse_deb822(text: str) -> list[dict[str, Any]]:
    """Stanzas of a .sources file (fields case-insensitive; `Enabled: no` skipped)."""
    items = []
    for stanza in re.split(r"\n\s*\n", text):
        fields: dict[str, str] = {}
        last = None
        for raw in stanza.splitlines():
            if raw.startswith("#") or not raw.strip():
                continue
            if raw[0].isspace() and last:  # continuation (an inline Signed-By key)
                fields[last] += "\n" + raw.strip()
                continue
            key, sep, value = raw.partition(":")
            if sep:
                last = key.strip().lower()
                fields[last] = value.strip()
        if not fields.get("uris") or fields.get("enabled", "yes").lower() == "no":
            continue
        items += [_apt(uri, fields) for uri in fields["uris"].split()]
    return items


def _apt(uri: str, options: dict[str, str]) -> dict[str, Any]:
    insecure = options.get("trusted", "").lower() in _TRUE or any(
        options.get(k, "").lower() in _TRUE for k in ("allow-insecure", "allow-weak")
    )
    return {**_item(uri, bool(options.get("signed-by")), not insecure), "name": None}


def parse_repo(text: str, default_gpgcheck: bool) -> list[dict[str, Any]]:
    """Enabled repositories of a .repo file."""
    parser = configparser.RawConfigParser(strict=False, interpolation=None)
    parser.read_string(text)
    items = []
    for section in parser.sections():
        if parser.get(section, "enabled", fallback="1").strip().lower() not in _TRUE:
            continue
        gpg = parser.get(section, "gpgcheck", fallback=None)
        verified = default_gpgcheck if gpg is None else gpg.strip().lower() in _TRUE
        uri = (
            parser.get(section, "baseurl", fallback=None)
            or parser.get(section, "mirrorlist", fallback=None)
            or parser.get(section, "metalink", fallback=None)
            or ""
        ).split()
        item = _item(uri[0] if uri else "", None, verified)
        items.append({**item, "name": clip(section, 256)})
    return items


def _main_gpgcheck(ctx: CollectContext, issues: list[Issue]) -> bool:
    for name in DNF_MAIN:
        text = read_file_or_issue(ctx, name, issues, "dnf")
        if text is not None:
            parser = configparser.RawConfigParser(strict=False, interpolation=None)
            parser.read_string(text)
            return parser.get("main", "gpgcheck", fallback="0").strip().lower() in _TRUE
    return False
