"""The journal's real retention (`logging.journald.retained_days`): the oldest entry
from `journalctl --list-boots --output=json`, recorded from journalctl 252 (Debian 12)
over a journal written by systemd-journal-remote on the development machine, and
against the real tools here; unknown (not root, no journalctl) is null with a reason."""

from __future__ import annotations

import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from agent.collectors.base import CollectContext, ErrorKind, Issue
from agent.collectors.logs import LIST_BOOTS, collect_logging, parse_boots
from tests.agent.certs import NOW
from tests.agent.fakes import FakeSystem, RecordedRunner
from tests.agent.recordings import recorded, result
from tests.support import require_tool

RECORDED = "journalctl-list-boots.remote-journal.json"


def _journald(
    tmp_path: Path, runner: RecordedRunner, *, privileged: bool = True
) -> tuple[dict[str, Any], tuple[Issue, ...]]:
    ctx = CollectContext(
        root=tmp_path, run=runner, system=FakeSystem(privileged=privileged), now=lambda: NOW
    )
    collected = collect_logging(ctx)
    return collected.data["journald"], collected.issues


def test_recorded_boots_give_the_oldest_entry_and_its_age(tmp_path: Path) -> None:
    runner = RecordedRunner(dict([result(LIST_BOOTS, recorded(RECORDED))]))
    journald, issues = _journald(tmp_path, runner)
    assert journald["oldest_entry_at"] == "2024-10-27T03:33:20Z"
    assert journald["retained_days"] == round((NOW.timestamp() - 1_730_000_000) / 86400, 1)
    assert journald["retained_days"] == 761.2
    assert [i for i in issues if "retained_days" in i.reason] == []


def test_no_journal_files_is_nothing_retained(tmp_path: Path) -> None:
    # journalctl 252 with no journal files: exit 0, nothing on stdout (recorded here).
    runner = RecordedRunner(dict([result(LIST_BOOTS, "")]))
    journald, _ = _journald(tmp_path, runner)
    assert (journald["oldest_entry_at"], journald["retained_days"]) == (None, 0.0)


def test_unprivileged_and_missing_tool_are_unknown_with_a_reason(tmp_path: Path) -> None:
    journald, issues = _journald(tmp_path, RecordedRunner(), privileged=False)
    assert journald["retained_days"] is None
    assert any(i.kind is ErrorKind.PERMISSION and "retained_days" in i.reason for i in issues)
    journald, issues = _journald(tmp_path, RecordedRunner())  # no journalctl
    assert journald["retained_days"] is None
    assert any(i.kind is ErrorKind.UNSUPPORTED and "journalctl" in i.reason for i in issues)


@pytest.mark.parametrize("text", ["{}", '[{"first_entry": "x"}]', "not json"])
def test_garbage_is_refused(text: str) -> None:
    with pytest.raises((ValueError, TypeError)):
        parse_boots(text, NOW)


def test_against_a_journal_written_here(tmp_path: Path) -> None:
    remote = Path("/lib/systemd/systemd-journal-remote")
    require_tool("journalctl")
    if not remote.exists():
        require_tool("systemd-journal-remote")
    stamps = (1_760_000_000_000_000, 1_764_000_000_000_000)
    export = "".join(
        f"__REALTIME_TIMESTAMP={t}\n__MONOTONIC_TIMESTAMP={n + 1}\n"
        f"_BOOT_ID={'%032x' % (n + 1)}\nMESSAGE=entry {n}\n\n"
        for n, t in enumerate(stamps)
    )
    journal = tmp_path / "test.journal"
    subprocess.run(
        [str(remote), f"--output={journal}", "-"],
        input=export.encode(),
        check=True,
        capture_output=True,
        timeout=30,
    )
    out = subprocess.run(
        ["journalctl", f"--file={journal}", *LIST_BOOTS[1:]],
        check=True,
        capture_output=True,
        text=True,
        timeout=30,
    ).stdout
    now = datetime(2026, 1, 1, tzinfo=UTC)
    oldest, days = parse_boots(out, now)
    assert oldest == "2025-10-09T08:53:20Z"
    assert days == round((now.timestamp() - 1_760_000_000) / 86400, 1)
