"""Bug fixture (issue 13): TIME-NOT-SYNCHRONIZED is a `fail`, not an `error`, when the
agent knows the time daemon is installed but not running.

A host without systemd (so `timedatectl` cannot say whether the clock is synchronized)
with chrony installed and not among the running processes: the real collector reports
`ntp_active: false`, and the shipped rule fails on it.
"""

from __future__ import annotations

from pathlib import Path

from agent.collectors.base import CollectContext
from agent.collectors.timesync import collect_time
from rules.engine import evaluate_rule
from rules.language.loader import builtin_packs_dir, load_rules
from rules.results import Status
from tests.agent.certs import NOW
from tests.agent.fakes import FakeSystem, RecordedRunner
from tests.rules.conftest import facts_document


def test_installed_chrony_not_running_fails(tmp_path: Path) -> None:
    (tmp_path / "usr/sbin").mkdir(parents=True)
    (tmp_path / "usr/sbin/chronyd").write_bytes(b"")
    for pid, comm in {1: "init", 77: "sshd"}.items():
        (tmp_path / f"proc/{pid}").mkdir(parents=True)
        (tmp_path / f"proc/{pid}/comm").write_text(f"{comm}\n")
    ctx = CollectContext(root=tmp_path, run=RecordedRunner(), system=FakeSystem(), now=lambda: NOW)
    collected = collect_time(ctx)
    assert collected.data["ntp_service"] == "chrony"
    assert collected.data["ntp_active"] is False
    assert collected.data["synchronized"] is None  # no systemd to ask
    rule = load_rules([builtin_packs_dir()]).get("TIME-NOT-SYNCHRONIZED")
    assert rule is not None
    result = evaluate_rule(rule, facts_document(time=collected.data))
    assert result.status is Status.FAIL
    assert result.items[0].message.en.endswith("service chrony, running: no, synchronized: unknown")
