"""A file the agent may not read is a `permission` entry naming it, never "absent".

Each test copies a fake root to a directory every user can enter, makes one or two
files unreadable (mode 000), and runs the collector as an unprivileged user, as an
administrator running `check` as themselves would: the domain is still reported,
with the unread file named in its entries. Only root can make such files, so the
tests skip for other users.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from agent.collectors.base import CollectContext, Collected, CollectorError, Issue
from agent.collectors.firewall import collect_firewall
from agent.collectors.inventory import timezone_of
from agent.collectors.logs import collect_logging
from agent.collectors.packages import collect_packages
from agent.collectors.updates import collect_updates
from tests.agent.certs import NOW
from tests.agent.conftest import ROOTS
from tests.agent.fakes import FakeSystem, RecordedRunner
from tests.agent.privileges import as_unprivileged
from tests.agent.recordings import debian12_runner, rocky9_runner

Outcome = list[Any]  # [data, [[kind, reason], ...]]: what crosses the pipe as JSON


@pytest.fixture
def root() -> Iterator[Path]:
    """An empty root tree under /tmp that an unprivileged user can enter."""
    if os.geteuid() != 0:
        pytest.skip("needs root to create files another user cannot read")
    path = Path(tempfile.mkdtemp(prefix="canhgac-denied-", dir="/tmp"))
    os.chmod(path, 0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path)


def _write(root: Path, host_path: str, text: str, mode: int = 0o644) -> None:
    path = root / host_path.lstrip("/")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    os.chmod(path, mode)


def _deny(root: Path, host_path: str) -> None:
    os.chmod(root / host_path.lstrip("/"), 0o000)


def _as_nobody(collector: Callable[[CollectContext], Collected], ctx: CollectContext) -> Outcome:
    def run() -> Outcome:
        collected = collector(ctx)
        return [collected.data, [[i.kind.value, i.reason] for i in collected.issues]]

    result: Outcome = as_unprivileged(run)
    return result


def _ctx(root: Path, run: RecordedRunner | None = None) -> CollectContext:
    return CollectContext(
        root=root, run=run or RecordedRunner(), system=FakeSystem(), now=lambda: NOW
    )


def test_ufw_rules_that_cannot_be_read_are_an_unknown_count_with_an_entry(root: Path) -> None:
    _write(root, "/etc/ufw/ufw.conf", "ENABLED=yes\n")
    _write(root, "/etc/default/ufw", 'DEFAULT_INPUT_POLICY="DROP"\n')
    # As installed: root's only (0640), here unreadable to the test's user.
    _write(root, "/etc/ufw/user.rules", "-A ufw-user-input -p tcp --dport 22 -j ACCEPT\n")
    _deny(root, "/etc/ufw/user.rules")
    data, issues = _as_nobody(collect_firewall, _ctx(root))
    assert data["backend"] == "ufw"
    assert (data["default_input_policy"], data["rule_count"]) == ("drop", None)
    assert issues == [["permission", "ufw: /etc/ufw/user.rules: Permission denied"]]


def test_unreadable_logging_configuration_is_named_and_the_rest_reported(root: Path) -> None:
    shutil.copytree(ROOTS / "debian12/etc", root / "etc", symlinks=True)
    _write(root, "/etc/systemd/journald.conf.d/50-retention.conf", "[Journal]\nStorage=volatile\n")
    _deny(root, "/etc/systemd/journald.conf.d/50-retention.conf")
    _deny(root, "/etc/logrotate.d/rsyslog")
    data, issues = _as_nobody(collect_logging, _ctx(root))
    assert issues == [
        [
            "permission",
            "journald: /etc/systemd/journald.conf.d/50-retention.conf: Permission denied",
        ],
        # this root has no /proc: whether journald runs is unknown, and said so
        ["failed", "journald: running: unknown, no process visible under /proc"],
        ["unsupported", "journald: retained_days: journalctl is not installed"],
        ["permission", "rotation: /etc/logrotate.d/rsyslog: Permission denied"],
    ]
    # journald.conf itself was read; the stanza for /var/log/syslog was not.
    assert data["journald"]["storage"] == "persistent"
    assert data["rotation"]["file"] is None


def test_debian_logs_and_flags_that_cannot_be_read_are_entries(root: Path) -> None:
    shutil.copytree(ROOTS / "debian12", root, dirs_exist_ok=True, symlinks=True)
    _write(root, "/var/log/dpkg.log", "2026-11-01 10:00:01 upgrade libc6:amd64 1 2\n", 0o640)
    _deny(root, "/var/log/dpkg.log")
    _write(root, "/run/reboot-required", "*** System restart required ***\n")
    _write(root, "/run/reboot-required.pkgs", "libc6\n")
    _deny(root, "/run/reboot-required.pkgs")
    data, issues = _as_nobody(collect_updates, _ctx(root, debian12_runner()))
    assert data["last_upgrade_at"] is None  # unknown, not "never upgraded"
    assert data["reboot_required"] is True
    assert issues == [
        ["permission", "last_upgrade_at: /var/log/dpkg.log: Permission denied"],
        ["permission", "reboot_required_packages: /run/reboot-required.pkgs: Permission denied"],
    ]


def test_rhel_locks_and_automatic_updates_that_cannot_be_read_are_entries(root: Path) -> None:
    shutil.copytree(ROOTS / "rocky9", root, dirs_exist_ok=True, symlinks=True)
    _deny(root, "/etc/dnf/plugins/versionlock.list")
    _write(root, "/etc/dnf/automatic.conf", "[commands]\napply_updates = yes\n")
    _deny(root, "/etc/dnf/automatic.conf")
    # strptime imports a module on first use; where the interpreter lives in a directory
    # only root may enter (a pyenv under /root), the unprivileged child could not.
    datetime.strptime("2024-05-20 10:01", "%Y-%m-%d %H:%M")
    data, issues = _as_nobody(collect_updates, _ctx(root, rocky9_runner()))
    assert data["held"] == []
    assert data["automatic_security_updates"] == {"enabled": None, "mechanism": "dnf-automatic"}
    assert issues == [
        ["permission", "held: /etc/dnf/plugins/versionlock.list: Permission denied"],
        ["permission", "automatic_security_updates: /etc/dnf/automatic.conf: Permission denied"],
    ]


def test_an_unreadable_os_release_is_why_there_is_no_platform(root: Path) -> None:
    _write(root, "/etc/os-release", "ID=debian\n")
    _deny(root, "/etc/os-release")

    def run() -> list[str]:
        try:
            collect_packages(_ctx(root, debian12_runner()))
        except CollectorError as e:
            return [e.kind.value, e.reason]
        return []

    assert as_unprivileged(run) == ["permission", "/etc/os-release: Permission denied"]


def test_an_unreadable_timezone_file_is_null_with_an_entry(root: Path) -> None:
    # /etc/localtime copied rather than linked: /etc/timezone names the zone.
    _write(root, "/etc/localtime", "TZif2")
    _write(root, "/etc/timezone", "Asia/Ho_Chi_Minh\n")
    _deny(root, "/etc/timezone")

    def run() -> Outcome:
        issues: list[Issue] = []
        zone = timezone_of(_ctx(root), issues)
        return [zone, [[i.kind.value, i.reason] for i in issues]]

    assert as_unprivileged(run) == [
        None,
        [["permission", "timezone: /etc/timezone: Permission denied"]],
    ]
    issues: list[Issue] = []
    os.chmod(root / "etc/timezone", 0o644)
    assert timezone_of(_ctx(root), issues) == "Asia/Ho_Chi_Minh" and issues == []
