"""The audit collector: recorded `auditctl -s` and `auditctl -l` (auditctl 3.0.9 on the
machine these tests were written on, with five rules loaded for the recording), the
"No rules" answer, a non-root agent, no auditctl, and this machine's real auditctl."""

from __future__ import annotations

import subprocess
from pathlib import Path

from agent.collectors.audit import collect_audit, parse_rules, watched_paths
from agent.collectors.base import CollectContext, ErrorKind
from agent.runner import CommandResult
from tests.agent.certs import NOW
from tests.agent.fakes import FakeSystem, RecordedRunner
from tests.agent.recordings import recorded
from tests.support import require_root, require_tool

STATUS = ("auditctl", "-s")
RULES = ("auditctl", "-l")


def _root(tmp_path: Path) -> Path:
    (tmp_path / "sbin").mkdir()
    (tmp_path / "sbin/auditctl").write_bytes(b"")
    return tmp_path


def _ctx(root: Path, runner: RecordedRunner) -> CollectContext:
    return CollectContext(root=root, run=runner, system=FakeSystem(), now=lambda: NOW)


def test_recorded_rules_and_status(tmp_path: Path) -> None:
    runner = RecordedRunner(
        {
            STATUS: CommandResult(STATUS, 0, recorded("auditctl-s.ci-sandbox.txt"), ""),
            RULES: CommandResult(RULES, 0, recorded("auditctl-l.ci-sandbox.txt"), ""),
        }
    )
    collected = collect_audit(_ctx(_root(tmp_path), runner))
    assert collected.issues == ()
    assert collected.data == {
        "installed": True,
        "enabled": 0,  # that kernel's audit was off (auditd not started)
        "rule_count": 5,
        # `-F path=/etc/group` was printed back by auditctl as a `-w` watch
        "watched_paths": ["/etc/passwd", "/etc/shadow", "/etc/sudoers", "/etc/group"],
    }


def test_no_rules_is_an_empty_list_not_one_rule() -> None:
    assert parse_rules("No rules\n") == []
    assert watched_paths(["-a always,exit -F arch=b64 -S open -F dir=/etc/ssh -F key=x"]) == [
        "/etc/ssh"
    ]


def test_not_root_is_unknown_with_permission_entries(tmp_path: Path) -> None:
    denied = "You must be root to run this program.\n"
    runner = RecordedRunner(
        {STATUS: CommandResult(STATUS, 4, "", denied), RULES: CommandResult(RULES, 4, "", denied)}
    )
    collected = collect_audit(_ctx(_root(tmp_path), runner))
    assert collected.data == {
        "installed": True,
        "enabled": None,
        "rule_count": None,
        "watched_paths": None,
    }
    assert [i.kind for i in collected.issues] == [ErrorKind.PERMISSION, ErrorKind.PERMISSION]


def test_without_auditctl(tmp_path: Path) -> None:
    assert collect_audit(_ctx(tmp_path, RecordedRunner())).data["installed"] is False


def test_this_machine_agrees_with_auditctl() -> None:
    auditctl = require_tool("auditctl")
    require_root()
    real = subprocess.run([auditctl, "-l"], capture_output=True, text=True, check=True).stdout
    data = collect_audit(CollectContext()).data
    assert data["installed"] is True
    assert data["rule_count"] == len(parse_rules(real))
    assert data["enabled"] in (0, 1, 2)
