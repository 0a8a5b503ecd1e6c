"""The matcher's fast path (per-source store reads, items shared between hosts, the
per-package-list cache) agrees item for item with a straightforward reference written
here: simple loops over every row of the store file, no cache, one host at a time.

Real inputs: the facts recorded on a Debian 12 machine (with its signed kernels)
against the Debian tracker, KEV and EPSS samples, and the package list recorded on a
Rocky Linux 9.4 host against the Rocky updateinfo sample; each with variants (a
version changed, a package removed, one source at two versions) matched by ONE
matcher in turn, so that what it remembers from one host is checked on the next.
"""

from __future__ import annotations

import copy
import sqlite3
from collections.abc import Mapping
from contextlib import closing
from datetime import date, datetime
from pathlib import Path
from typing import Any

from agent.collectors.platforms.rhel import parse_rpm_query
from server.vulns.feeds.detect import read_feed
from server.vulns.matching import VulnMatcher
from server.vulns.store import build_store
from server.vulns.versions import compare
from tests.server.vulns.conftest import (
    DATA,
    FETCHED,
    IMPORTED,
    RUNNING,
    TODAY,
    import_samples,
    recorded_facts,
    with_kernels,
)

RPM_QA = DATA.parents[1] / "agent" / "commands" / "rpm-qa.rocky9.txt"
ROCKY_RUNNING = "5.14.0-427.13.1.el9_4.x86_64"


def reference(store: Path, facts: dict[str, Any], today: date) -> list[dict[str, Any]]:
    """What the matcher must say, read the long way: every advisory row of the store."""
    os_release = facts["host"]["os"]
    distro = os_release["id"]
    release = os_release["version_codename"] if distro == "debian" else os_release["version_id"][0]
    running = facts["host"]["kernel"]["release"]
    manager = facts["packages"]["manager"]
    with closing(sqlite3.connect(store)) as db:
        rows = list(db.execute("SELECT * FROM advisories"))
        kev = {cve for (cve,) in db.execute("SELECT cve FROM kev")}
        epss = dict(db.execute("SELECT cve, score FROM epss"))
    found: dict[tuple[str, str], dict[str, Any]] = {}
    for package in facts["packages"]["items"]:
        key = _key(package, distro, running)
        if key is None:
            continue
        source, version = key
        for row in rows:
            (_feed, r_distro, r_release, r_package, cve, status, fixed, archive) = row[:8]
            severity, no_dsa, fix_seen_at, pro_only = row[8:]
            if (r_distro, r_release, r_package) != (distro, release, source):
                continue
            if status == "fixed":
                if compare(manager, version, fixed) >= 0:
                    continue
                available = archive and compare(manager, archive, fixed) >= 0
                state = "fix_available" if available else "fix_pending"
            else:
                state = {
                    "open": "affected_no_fix",
                    "ignored": "will_not_fix",
                    "end_of_life": "end_of_life",
                }[status]
            fix_age = None
            if state == "fix_available" and fix_seen_at:
                seen = datetime.fromisoformat(fix_seen_at.replace("Z", "+00:00")).date()
                fix_age = max((today - seen).days, 0)
            item = {
                "cve": cve,
                "package": source,
                "binaries": [package["name"]],
                "installed_version": version,
                "fixed_version": fixed,
                "archive_version": archive,
                "state": state,
                "severity": severity,
                "no_dsa": bool(no_dsa),
                "pro_only": bool(pro_only),
                "kev": cve in kev,
                "epss": epss.get(cve),
                "fix_age_days": fix_age,
            }
            known = found.get((cve, source))
            if known is not None:  # one item per (CVE, source), at the older version
                older = compare(manager, version, known["installed_version"]) < 0
                item = {**(item if older else known)}
                item["binaries"] = sorted({*known["binaries"], package["name"]})
            found[(cve, source)] = item
    for item in found.values():
        item["binaries"] = item["binaries"][:10]  # evidence, not an inventory
    return sorted(found.values(), key=lambda i: (i["cve"], i["package"]))


def _key(package: Mapping[str, Any], distro: str, running: str) -> tuple[str, str] | None:
    name, version = package["name"], package["version"]
    source = package.get("source") or name
    if distro == "debian":
        if source == "linux" or source.startswith("linux-signed-"):
            if name not in {f"linux-image-{running}", f"linux-image-{running}-unsigned"}:
                return None
            return "linux", version
        return source, package.get("source_version") or version
    if source == "kernel" and f"{version.partition(':')[2] or version}.x86_64" != running:
        return None
    label = (package.get("module") or "").split(":")
    stream = f"@{label[0]}:{label[1]}" if len(label) >= 2 else ""
    return f"{name}.{package['architecture']}{stream}", version


def _agree(
    matcher: VulnMatcher, store: Path, facts: dict[str, Any], digest: str
) -> list[dict[str, Any]]:
    expected = reference(store, facts, TODAY)
    for key in (None, digest, digest):  # the plain path, then the package-list cache twice
        domain, problem = matcher.match(facts, TODAY, packages_key=key)
        assert problem is None and domain is not None
        got = sorted(domain["items"], key=lambda i: (i["cve"], i["package"]))
        assert got == expected
        # the order: by (source, version, CVE); by (CVE, source) when one source is
        # installed at two versions (its items were merged)
        os_id, running = facts["host"]["os"]["id"], facts["host"]["kernel"]["release"]
        keys = {_key(p, os_id, running) for p in facts["packages"]["items"]} - {None}
        if len(keys) == len({key[0] for key in keys if key is not None}):
            assert domain["items"] == sorted(
                got, key=lambda i: (i["package"], i["installed_version"], i["cve"])
            )
        else:
            assert domain["items"] == got
        assert domain["count"] == len(expected)
    return expected


def test_debian_fast_path_agrees_with_the_reference(tmp_path: Path) -> None:
    store = tmp_path / "vulndb.sqlite"
    import_samples(store, ("debian-tracker.json", "kev.json", "epss.csv"))
    base = with_kernels(recorded_facts())
    fixed_openssl = copy.deepcopy(base)
    for item in fixed_openssl["packages"]["items"]:
        if item.get("source") == "openssl":
            item["version"] = item["source_version"] = "3.0.23-1~deb12u1"
    half_upgraded = copy.deepcopy(base)
    for item in half_upgraded["packages"]["items"]:
        if item["name"] == "libssl3":  # left behind when openssl's other binaries moved
            item["version"] = item["source_version"] = "3.0.11-1~deb12u2"
    fewer = copy.deepcopy(base)
    fewer["packages"]["items"] = [
        i for i in fewer["packages"]["items"] if i.get("source") not in {"openssl", "curl"}
    ]
    other_kernel = copy.deepcopy(base)
    other_kernel["host"]["kernel"]["release"] = "6.1.0-28-amd64"
    matcher = VulnMatcher(store, 7)
    found = [
        _agree(matcher, store, facts, name)
        for name, facts in [
            ("base", base),
            ("fixed-openssl", fixed_openssl),
            ("half", half_upgraded),
            ("fewer", fewer),
            ("base", other_kernel),  # one package list, another running kernel
            ("base", base),
        ]
    ]
    assert RUNNING in str(base["host"]["kernel"])
    counts = [len(items) for items in found]
    assert counts[0] > 0 and counts[1] < counts[0] and counts[3] < counts[0]
    openssl = [i for i in found[2] if i["package"] == "openssl"]
    assert openssl and {i["installed_version"] for i in openssl} == {"3.0.11-1~deb12u2"}
    kernels = [{i["installed_version"] for i in f if i["package"] == "linux"} for f in found]
    # the other kernel's items, not those cached for the same package list
    assert kernels[0] == {"6.1.187-1"} and kernels[4] == {"6.1.119-1"}


def test_rocky_fast_path_agrees_with_the_reference(tmp_path: Path) -> None:
    store = tmp_path / "vulndb.sqlite"
    build_store(
        store, [read_feed(DATA / "updateinfo" / "rocky9-updateinfo.xml", FETCHED)], IMPORTED
    )
    text = RPM_QA.read_text("utf-8")
    text += "kernel-core\t5.14.0-362.8.1.el9_3\tx86_64\tkernel-5.14.0-362.8.1.el9_3.src.rpm\n"
    text += (
        "nginx\t1:1.22.1-3.module+el9.2.0+14931+1a1f8d4c\tx86_64\t"
        "nginx-1.22.1-3.module+el9.2.0+14931+1a1f8d4c.src.rpm\tnginx:1.22:9020:9\n"
    )
    items = parse_rpm_query(text)
    base: dict[str, Any] = {
        "host": {"os": {"id": "rocky", "version_id": "9.4"}, "kernel": {"release": ROCKY_RUNNING}},
        "packages": {"manager": "rpm", "count": len(items), "items": items},
    }
    upgraded = copy.deepcopy(base)
    for item in upgraded["packages"]["items"]:
        if item["name"] == "openssl-libs":
            item["version"] = "1:3.0.7-29.el9_4"
    matcher = VulnMatcher(store, 7)
    first = _agree(matcher, store, base, "rocky-base")
    second = _agree(matcher, store, upgraded, "rocky-upgraded")
    assert len(first) > len(second) > 0
    assert _agree(matcher, store, base, "rocky-base") == first
