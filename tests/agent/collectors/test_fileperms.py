"""The file_permissions collector: a built root with every case, the walk budget, a
directory the agent may not list, and this machine compared with `find`."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from agent.collectors import fileperms
from agent.collectors.base import CollectContext, ErrorKind
from agent.collectors.fileperms import ROOTS, collect_file_permissions
from tests.agent.certs import NOW
from tests.agent.fakes import FakeSystem, RecordedRunner
from tests.agent.privileges import as_unprivileged
from tests.support import require, require_tool


def _ctx(root: Path) -> CollectContext:
    return CollectContext(root=root, run=RecordedRunner(), system=FakeSystem(), now=lambda: NOW)


def _file(root: Path, host_path: str, mode: int) -> None:
    path = root / host_path.lstrip("/")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("x")
    path.chmod(mode)


def _tree(root: Path) -> Path:
    _file(root, "/etc/app/secret.conf", 0o666)  # world-writable: reported
    _file(root, "/etc/app/ok.conf", 0o644)
    _file(root, "/usr/local/bin/tool", 0o777)  # reported
    _file(root, "/tmp/scratch", 0o666)  # /tmp is not walked
    (root / "srv/upload").mkdir(parents=True)
    (root / "srv/upload").chmod(0o777)  # no sticky bit: reported
    (root / "srv/shared").mkdir()
    (root / "srv/shared").chmod(0o1777)  # sticky: fine
    (root / "etc/app/link").symlink_to("/etc/app/ok.conf")  # links are 0777, never reported
    return root


def test_world_writable_files_and_unprotected_directories(tmp_path: Path) -> None:
    collected = collect_file_permissions(_ctx(_tree(tmp_path)))
    assert collected.issues == ()
    data = collected.data
    assert data["complete"] is True
    assert sorted(data["world_writable_files"]) == ["/etc/app/secret.conf", "/usr/local/bin/tool"]
    assert data["world_writable_files_count"] == 2
    assert data["unprotected_directories"] == ["/srv/upload"]
    assert data["entries_scanned"] == 8  # app, 3 in app, bin, tool, upload, shared


def test_a_cut_walk_is_incomplete_with_an_entry(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(fileperms, "MAX_ENTRIES", 3)
    collected = collect_file_permissions(_ctx(_tree(tmp_path)))
    assert collected.data["complete"] is False
    assert collected.data["unprotected_directories_count"] is None  # none seen yet: unknown
    assert [i.kind for i in collected.issues] == [ErrorKind.FAILED]
    assert "stopped after 3 entries" in collected.issues[0].reason


def test_a_directory_that_cannot_be_listed_makes_the_walk_incomplete() -> None:
    require(os.geteuid() == 0, "needs root to make a directory another user cannot list")
    root = Path(tempfile.mkdtemp(prefix="canhgac-perms-", dir="/tmp"))
    try:
        root.chmod(0o755)
        _file(root, "/etc/private/key", 0o600)
        (root / "etc").chmod(0o755)
        (root / "etc/private").chmod(0o700)
        data, issues = as_unprivileged(lambda: _plain(root))
    finally:
        shutil.rmtree(root)
    assert data["complete"] is False
    assert issues == [["permission", "1 directories not listed: /etc/private"]]


def _plain(root: Path) -> list[object]:
    collected = collect_file_permissions(_ctx(root))
    return [collected.data, [[i.kind.value, i.reason] for i in collected.issues]]


def test_this_machine_agrees_with_find() -> None:
    find = require_tool("find")
    data = collect_file_permissions(CollectContext()).data
    require(data["complete"], "the walk was cut short on this machine")
    roots = [r for r in ROOTS if Path(r).exists()]
    out = subprocess.run(
        [find, *roots, "-xdev", "-type", "f", "-perm", "-0002"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.split()
    # find walks /bin and /usr/bin both on merged-usr hosts; the collector once
    expected = {os.path.realpath(p) for p in out}
    assert {os.path.realpath(p) for p in data["world_writable_files"]} == expected
