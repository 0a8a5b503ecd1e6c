"""Bug fixture (issue 13): LOG-NOT-PERSISTENT on a host with no logging at all.

journald not running, no syslog daemon, /var/log/journal present but empty: the
configuration says "persistent" (Storage=auto with the directory), yet nothing is
written. The collector reports `journald.running: false`, and the shipped rule fails;
with no process visible at all, `running` is null with a reason and the rule errs.
"""

from __future__ import annotations

from pathlib import Path

from agent.collectors.base import CollectContext
from agent.collectors.logs import collect_logging
from rules.engine import evaluate_rule
from rules.language.loader import builtin_packs_dir, load_rules
from rules.results import Status
from tests.agent.certs import NOW
from tests.agent.fakes import FakeSystem, RecordedRunner
from tests.rules.conftest import facts_document


def _root(tmp_path: Path, processes: dict[int, str]) -> Path:
    (tmp_path / "var/log/journal").mkdir(parents=True)  # empty: nothing was written
    (tmp_path / "etc/systemd").mkdir(parents=True)
    (tmp_path / "etc/systemd/journald.conf").write_text("[Journal]\n#Storage=auto\n")
    for pid, comm in processes.items():
        (tmp_path / f"proc/{pid}").mkdir(parents=True)
        (tmp_path / f"proc/{pid}/comm").write_text(f"{comm}\n")
    return tmp_path


def _judge(root: Path) -> tuple[dict[str, object], Status, tuple[str, ...]]:
    ctx = CollectContext(root=root, run=RecordedRunner(), system=FakeSystem(), now=lambda: NOW)
    collected = collect_logging(ctx)
    errors = [
        {"domain": "logging", "kind": i.kind.value, "reason": i.reason} for i in collected.issues
    ]
    rule = load_rules([builtin_packs_dir()]).get("LOG-NOT-PERSISTENT")
    assert rule is not None
    result = evaluate_rule(rule, facts_document(logging=collected.data, errors=errors))
    return collected.data, result.status, result.errors


def test_no_logging_at_all_fails(tmp_path: Path) -> None:
    root = _root(tmp_path, {1: "init", 310: "cron", 412: "sshd"})
    data, status, _ = _judge(root)
    assert data["journald"] == {
        "storage": "auto",
        "persistent": True,
        "running": False,
        "system_max_use": None,
        "max_retention_sec": None,
        # RecordedRunner has no journalctl: the journal's age is unknown, said so
        "oldest_entry_at": None,
        "retained_days": None,
    }
    assert data["syslog"] == {"daemon": None, "running": None}
    assert status is Status.FAIL


def test_journald_running_with_its_directory_passes(tmp_path: Path) -> None:
    root = _root(tmp_path, {1: "systemd", 245: "systemd-journal"})
    data, status, _ = _judge(root)
    assert data["journald"]["running"] is True  # type: ignore[index]
    assert status is Status.PASS


def test_no_process_visible_is_an_error_with_the_reason(tmp_path: Path) -> None:
    root = _root(tmp_path, {})
    data, status, errors = _judge(root)
    assert data["journald"]["running"] is None  # type: ignore[index]
    assert status is Status.ERROR
    assert "no process visible under /proc" in errors[0]
