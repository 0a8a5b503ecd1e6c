"""Packages and patch status from recorded dpkg/apt (Debian 12) and rpm/dnf (Rocky 9)
outputs, for real with apt on this machine, and the first-seen memory across runs."""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

from agent.collectors.base import CollectContext, ErrorKind, rfc3339_utc
from agent.collectors.packages import collect_packages
from agent.collectors.platforms.debian import (
    APT_LIST,
    DPKG_QUERY,
    parse_apt_upgradable,
    parse_dpkg_query,
)
from agent.collectors.platforms.rhel import (
    parse_check_update,
    parse_rpm_query,
    parse_security_names,
)
from agent.collectors.updates import collect_updates, kernel_key, newest_kernel
from agent.document import collect_facts
from agent.errors import CommandTimeout
from agent.runner import CommandResult
from agent.state.identity import Identity
from agent.state.pending import remember_pending
from agent.state.store import StateStore
from rules.facts import Domain
from tests.agent.certs import NOW
from tests.agent.conftest import ROOTS
from tests.agent.fakes import FakeSystem, RecordedRunner
from tests.agent.recordings import debian12_runner, recorded, rocky9_runner
from tests.support import require, require_tool


def _ctx(root: Path, run: Any, **kw: Any) -> CollectContext:
    return CollectContext(root=root, run=run, system=FakeSystem(), now=lambda: NOW, **kw)


def test_dpkg_packages_from_the_recorded_query() -> None:
    data = collect_packages(_ctx(ROOTS / "debian12", debian12_runner())).data
    lines = recorded("dpkg-query.debian12.txt").splitlines()
    installed = [line for line in lines if line.split("\t")[4][1] == "i"]
    assert data["manager"] == "dpkg"
    assert data["count"] == len(installed) == len(data["items"])
    adduser = next(p for p in data["items"] if p["name"] == "adduser")
    assert adduser == {
        "name": "adduser",
        "version": "3.134",
        "architecture": "all",
        "source": "adduser",
        "source_version": None,  # recorded before ${source:Version} was queried
    }


def test_dpkg_source_version_from_this_machine() -> None:
    """The real dpkg-query with the agent's format: binNMU binaries (bash 5.2.15-2+b8 on
    Debian 12) keep their source's version, which the vulnerability feeds use."""
    require_tool("dpkg-query")
    output = subprocess.run(
        DPKG_QUERY, capture_output=True, text=True, check=True, timeout=60
    ).stdout
    rows = {row["name"]: row for row in parse_dpkg_query(output)}
    assert all(row["source_version"] for row in rows.values() if row["_installed"])
    binnmu = [r for r in rows.values() if r["source_version"] != r["version"]]
    assert binnmu, "a Debian 12 system has binNMU or differently versioned binaries"
    for row in binnmu:
        assert row["version"].startswith(row["source_version"]) or row["name"] != row["source"]


def test_rpm_module_label_and_source_version() -> None:
    line = (
        "nodejs\t1:18.20.2-1.module+el9.4.0+21731+46b5c8cd\tx86_64\t"
        "nodejs-18.20.2-1.module+el9.4.0+21731+46b5c8cd.src.rpm\t"
        "nodejs:18:9040020240426160930:rhel9\n"
        "bash\t5.1.8-9.el9\tx86_64\tbash-5.1.8-9.el9.src.rpm\t(none)\n"
    )
    nodejs, bash = parse_rpm_query(line)
    assert nodejs["module"] == "nodejs:18:9040020240426160930:rhel9"
    assert nodejs["source_version"] == "1:18.20.2-1.module+el9.4.0+21731+46b5c8cd"
    assert bash["module"] is None and bash["source_version"] == "5.1.8-9.el9"


def test_apt_pending_security_and_held() -> None:
    collected = collect_updates(_ctx(ROOTS / "debian12", debian12_runner()))
    data = collected.data
    listed = [
        line for line in recorded("apt-list-upgradable.debian12.txt").splitlines() if "/" in line
    ]
    assert data["manager"] == "apt"
    assert data["pending_count"] == len(listed) == len(data["pending"])
    assert data["security_count"] == sum(1 for line in listed if "-security" in line.split()[0])
    apt = next(p for p in data["pending"] if p["name"] == "apt")
    assert apt == {
        "name": "apt",
        "current_version": "2.6.1",
        "candidate_version": "2.6.2",
        "architecture": "amd64",
        "origin": "oldstable-security",
        "security": True,
        "first_seen_at": "2026-11-27T08:00:00Z",
    }
    # apt-config dump has APT::Periodic::Unattended-Upgrade "1", but the package is not
    # installed on the recorded host: nothing runs it.
    assert data["automatic_security_updates"] == {"enabled": False, "mechanism": None}
    assert data["held"] == []
    assert (
        data["running_kernel"] == (ROOTS / "debian12/proc/sys/kernel/osrelease").read_text().strip()
    )
    assert data["newest_installed_kernel"] == "6.1.0-28-amd64"


def test_apt_upgradable_parsing_edge_cases() -> None:
    text = (
        "Listing...\n"
        "libssl3/bookworm-security,bookworm-updates 3.0.15-1~deb12u1 amd64 [upgradable from: 3.0.11-1~deb12u2]\n"
        "tzdata/noble-updates 2024b-0ubuntu0.24.04 all [upgradable from: 2024a-2ubuntu1]\n"
        "garbage line\n"
    )
    pending = parse_apt_upgradable(text)
    assert [(p["name"], p["security"], p["origin"]) for p in pending] == [
        ("libssl3", True, "bookworm-security,bookworm-updates"),
        ("tzdata", False, "noble-updates"),
    ]


def test_unattended_upgrades_enabled_when_installed(tmp_path: Path) -> None:
    runner = debian12_runner()
    key = next(k for k in runner.recordings if k[0] == "dpkg-query")
    extra = "unattended-upgrades\t2.9.1+nmu3\tall\tunattended-upgrades\tii \n"
    held = "nginx\t1.22.1-9\tamd64\tnginx\thi \n"
    runner.recordings[key] = CommandResult(
        key, 0, recorded("dpkg-query.debian12.txt") + extra + held, ""
    )
    data = collect_updates(_ctx(ROOTS / "debian12", runner)).data
    assert data["automatic_security_updates"] == {
        "enabled": True,
        "mechanism": "unattended-upgrades",
    }
    assert data["held"] == ["nginx"]


def test_index_age_last_upgrade_and_reboot_flags(tmp_path: Path) -> None:
    root = tmp_path
    shutil.copytree(ROOTS / "debian12", root, dirs_exist_ok=True, symlinks=True)
    lists = root / "var/lib/apt/lists"
    lists.mkdir(parents=True)
    release = lists / "deb.debian.org_debian_dists_bookworm_InRelease"
    release.write_text("x")
    refreshed = (NOW - dt.timedelta(days=12, hours=12)).timestamp()
    os.utime(release, (refreshed, refreshed))
    os.utime(lists, (refreshed - 86400, refreshed - 86400))
    (root / "var/log").mkdir(parents=True, exist_ok=True)
    (root / "var/log/dpkg.log").write_text(
        "2026-11-01 10:00:00 startup archives unpack\n"
        "2026-11-01 10:00:01 upgrade libc6:amd64 2.36-9+deb12u8 2.36-9+deb12u9\n"
        "2026-11-02 09:00:00 install htop:amd64 <none> 3.2.2-2\n"
    )
    (root / "run/reboot-required").write_text("*** System restart required ***\n")
    (root / "run/reboot-required.pkgs").write_text("linux-image-6.1.0-28-amd64\nlibc6\n")
    (root / "proc/sys/kernel/osrelease").write_text("6.1.0-25-amd64\n")
    collected = collect_updates(_ctx(root, debian12_runner()))
    assert collected.issues == ()
    data = collected.data
    assert data["index_refreshed_at"] == "2026-11-14T20:00:00Z"
    expected = dt.datetime(2026, 11, 1, 10, 0, 1).astimezone()  # dpkg.log is local time
    assert data["last_upgrade_at"] == expected.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    # The ages are the document's, derived from those timestamps as of collected_at.
    assert not {"index_age_days", "last_upgrade_days"} & set(data)
    built = collect_facts(
        _ctx(root, debian12_runner()), Identity("t", 1), domains=[Domain.UPDATES], now=lambda: NOW
    )["updates"]
    assert built["index_age_days"] == 12.5
    assert built["last_upgrade_days"] == round((NOW - expected).total_seconds() / 86400, 2)
    assert {p["pending_days"] for p in built["pending"]} == {0.0}
    assert data["reboot_required"] is True
    assert data["reboot_required_packages"] == ["libc6", "linux-image-6.1.0-28-amd64"]
    assert data["running_kernel"] == "6.1.0-25-amd64"
    assert data["kernel_update_pending"] is True


def test_kernel_ordering() -> None:
    assert kernel_key("6.1.0-28-amd64") > kernel_key("6.1.0-9-amd64")
    assert kernel_key("5.14.0-427.20.1.el9_4.x86_64") > kernel_key("5.14.0-427.13.1.el9_4.x86_64")
    assert newest_kernel([]) is None


def test_rpm_and_dnf_on_rocky(validate: Callable[[Any], Any]) -> None:
    ctx = _ctx(ROOTS / "rocky9", rocky9_runner())
    packages = collect_packages(ctx).data
    assert packages["manager"] == "rpm"
    assert "gpg-pubkey" not in {p["name"] for p in packages["items"]}
    assert packages["count"] == 9
    nginx = next(p for p in packages["items"] if p["name"] == "nginx")
    assert nginx == {
        "name": "nginx",
        "version": "1:1.20.1-14.el9_2.1",
        "architecture": "x86_64",
        "source": "nginx",
        "source_version": "1:1.20.1-14.el9_2.1",  # the binary's epoch: SRPM names have none
        "module": None,
    }
    collected = collect_updates(ctx)
    data = collected.data
    assert data["manager"] == "dnf"
    by_name = {p["name"]: p for p in data["pending"]}
    assert list(by_name) == [
        "glibc",
        "glibc-common",
        "kernel-core",
        "openssl-libs",
        "python3-dnf-plugin-versionlock",
        "tzdata",
    ]  # the wrapped name is joined; "Obsoleting Packages" is not a second list
    assert by_name["openssl-libs"] == {
        "name": "openssl-libs",
        "current_version": "1:3.0.7-27.el9",
        "candidate_version": "1:3.0.7-27.el9_4.1",
        "architecture": "x86_64",
        "origin": "baseos",
        "security": True,
        "first_seen_at": "2026-11-27T08:00:00Z",
    }
    assert by_name["tzdata"]["security"] is False
    assert (data["pending_count"], data["security_count"]) == (6, 4)
    assert data["held"] == ["nginx"]
    expected = dt.datetime(2024, 5, 20, 10, 1).astimezone().astimezone(dt.UTC)
    assert data["last_upgrade_at"] == expected.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert data["reboot_required"] is True
    assert data["reboot_required_packages"] == ["glibc", "kernel"]
    assert data["automatic_security_updates"] == {"enabled": False, "mechanism": None}
    assert collected.issues == ()
    document = collect_facts(ctx, Identity("t", 1), domains=[Domain.PACKAGES, Domain.UPDATES])
    validate(document)


def test_dnf_security_names_and_wrapped_lines() -> None:
    names = parse_security_names("RLSA-1 Important/Sec. openssl-libs-1:3.0.7-27.el9_4.1.x86_64\n")
    assert names == {"openssl-libs.x86_64"}
    assert parse_security_names(None) is None
    pending = parse_check_update(
        "a-very-long-package-name.noarch\n    1.0-1.el9   appstream\n", {}, None
    )
    assert [(p["name"], p["candidate_version"], p["security"]) for p in pending] == [
        ("a-very-long-package-name", "1.0-1.el9", False)
    ]


def test_a_hung_package_manager_is_a_timeout_entry() -> None:
    class Hung(RecordedRunner):
        def __call__(self, argv: Any, timeout: float) -> CommandResult:
            if tuple(argv) == tuple(APT_LIST):
                raise CommandTimeout(f"command timed out after {timeout:g}s: apt list")
            return super().__call__(argv, timeout)

    runner = Hung(debian12_runner().recordings)
    document = collect_facts(
        _ctx(ROOTS / "debian12", runner),
        Identity("t", 1),
        domains=[Domain.UPDATES, Domain.PACKAGES],
    )
    assert "updates" not in document and document["packages"]["count"] > 0
    assert document["errors"] == [
        {
            "domain": "updates",
            "kind": ErrorKind.TIMEOUT.value,
            "reason": "command timed out after 45s: apt list",
        }
    ]


def test_pending_age_is_remembered_across_runs(tmp_path: Path) -> None:
    store = StateStore(tmp_path / "state")
    first_day = collect_facts(
        _ctx(ROOTS / "debian12", debian12_runner(), first_seen=store.load().pending_seen),
        Identity("t", 1),
        domains=[Domain.UPDATES],
        now=lambda: NOW,
    )
    remember_pending(store, first_day)
    later = NOW + dt.timedelta(days=45, hours=6)
    runner = debian12_runner()
    # By then apt was upgraded, and base-files has a newer candidate: both start afresh
    # or disappear; everything else keeps its first sighting.
    key = tuple(APT_LIST)
    text = recorded("apt-list-upgradable.debian12.txt")
    text = "\n".join(line for line in text.splitlines() if not line.startswith("apt/"))
    text = text.replace("base-files/oldstable 12.4+deb12u15", "base-files/oldstable 12.4+deb12u16")
    runner.recordings[key] = CommandResult(key, 0, text, "")
    state = store.load()
    second = collect_facts(
        _ctx(
            ROOTS / "debian12",
            runner,
            first_seen=state.pending_seen,
            pending_watched_since=state.pending_watched_since,
        ),
        Identity("t", 2),
        domains=[Domain.UPDATES],
        now=lambda: later,
    )
    remember_pending(store, second)
    pending = {p["name"]: p for p in second["updates"]["pending"]}
    assert "apt" not in pending
    assert pending["base-files"]["pending_days"] == 0.0
    assert pending["apt-transport-https"]["first_seen_at"] == "2026-11-27T08:00:00Z"
    assert pending["apt-transport-https"]["pending_days"] == 45.25
    remembered = store.load().pending_seen
    assert "apt:amd64=2.6.2" not in remembered
    assert remembered["base-files:amd64=12.4+deb12u16"] == "2027-01-11T14:00:00Z"
    # The sightings of the first day are when the agent started watching, not when
    # those updates became pending: the document says since when it has been watching.
    assert first_day["updates"]["pending_watched_since"] == "2026-11-27T08:00:00Z"
    assert second["updates"]["pending_watched_since"] == "2026-11-27T08:00:00Z"
    assert store.load().pending_watched_since == "2026-11-27T08:00:00Z"


def test_without_a_state_watching_starts_at_the_collection() -> None:
    later = NOW + dt.timedelta(days=3)
    document = collect_facts(
        _ctx(ROOTS / "debian12", debian12_runner()),
        Identity("t", 0),
        domains=[Domain.UPDATES],
        now=lambda: later,
    )
    updates = document["updates"]
    assert updates["pending_watched_since"] == document["collected_at"] == "2026-11-30T08:00:00Z"
    assert {p["first_seen_at"] for p in updates["pending"]} == {"2026-11-30T08:00:00Z"}


def test_a_watch_start_in_the_future_is_not_believed() -> None:
    document = collect_facts(
        _ctx(ROOTS / "debian12", debian12_runner(), pending_watched_since="2099-01-01T00:00:00Z"),
        Identity("t", 1),
        domains=[Domain.UPDATES],
        now=lambda: NOW,
    )
    assert document["updates"]["pending_watched_since"] == "2026-11-27T08:00:00Z"


def test_pending_count_matches_apt_list_upgradable_on_this_machine() -> None:
    require_tool("apt")
    require(Path("/etc/debian_version").exists(), "not a Debian-family machine")
    ctx = CollectContext(fqdn_resolver=lambda _n: None)
    data = collect_updates(ctx).data
    out = subprocess.run(
        ["apt", "list", "--upgradable"],
        capture_output=True,
        text=True,
        check=True,
        env={"PATH": "/usr/bin:/bin:/usr/sbin:/sbin", "LC_ALL": "C"},
    ).stdout
    lines = [line for line in out.splitlines() if "[upgradable from:" in line]
    assert data["pending_count"] == len(lines)
    assert sorted(p["name"] for p in data["pending"]) == sorted(
        line.split("/", 1)[0] for line in lines
    )
    assert data["security_count"] == sum(1 for line in lines if "-security" in line.split()[0])


def test_a_state_from_before_the_watch_start_dates_it_from_its_oldest_sighting(
    tmp_path: Path,
) -> None:
    store = StateStore(tmp_path / "state")
    older = NOW - dt.timedelta(days=20)
    # As an agent without pending_watched_since left it: sightings only.
    store.update(
        lambda s: dataclasses.replace(
            s, pending_seen={"apt-transport-https:all=2.6.2": rfc3339_utc(older)}
        )
    )
    state = store.load()
    document = collect_facts(
        _ctx(ROOTS / "debian12", debian12_runner(), first_seen=state.pending_seen),
        Identity("t", 1),
        domains=[Domain.UPDATES],
        now=lambda: NOW,
    )
    remember_pending(store, document)
    assert store.load().pending_watched_since == "2026-11-07T08:00:00Z"
