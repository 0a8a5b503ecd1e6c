"""The state file: increasing sequence numbers that survive a restart, atomic writes."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import threading
from pathlib import Path

import pytest

from agent.errors import StateError
from agent.state.store import STATE_FILE, AgentState, StateStore, default_state_dir
from tests.agent.privileges import as_unprivileged


def test_seq_increases_and_survives_a_new_store(tmp_path: Path) -> None:
    first = StateStore(tmp_path / "state")
    assert [first.next_seq() for _ in range(3)] == [1, 2, 3]
    restarted = StateStore(tmp_path / "state")  # what a new process sees
    epoch = restarted.load().seq_epoch
    assert restarted.load() == AgentState(seq=3, seq_epoch=epoch)
    assert restarted.next_seq() == 4
    assert json.loads((tmp_path / "state" / STATE_FILE).read_text()) == {
        "seq": 4,
        "seq_epoch": epoch,
    }


def test_writes_leave_no_temporary_files_and_are_private(tmp_path: Path) -> None:
    store = StateStore(tmp_path / "s")
    store.next_seq()
    store.next_seq()
    assert sorted(p.name for p in (tmp_path / "s").iterdir()) == ["state.json", "state.lock"]
    assert (tmp_path / "s" / STATE_FILE).stat().st_mode & 0o077 == 0
    assert (tmp_path / "s").stat().st_mode & 0o077 == 0


def test_concurrent_updates_never_reuse_a_number(tmp_path: Path) -> None:
    seen: list[int] = []
    lock = threading.Lock()

    def worker() -> None:
        for _ in range(20):
            value = StateStore(tmp_path).next_seq()
            with lock:
                seen.append(value)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(seen) == list(range(1, 81))


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "not valid JSON"),
        ("[1, 2]", "JSON object"),
        ('{"seq": -1}', "non-negative"),
        ('{"seq": true}', "non-negative"),
        ('{"seq": 1, "agent_id": 5}', "agent_id"),
    ],
)
def test_corrupt_state_is_an_error_not_a_silent_reset(
    tmp_path: Path, content: str, message: str
) -> None:
    (tmp_path / STATE_FILE).write_text(content)
    with pytest.raises(StateError, match=message):
        StateStore(tmp_path).next_seq()
    assert (tmp_path / STATE_FILE).read_text() == content


def test_unusable_directory_is_a_state_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(StateError, match="--state-dir"):
        StateStore(blocker / "state").next_seq()


def test_default_state_dir_prefers_the_system_dir_when_writable(tmp_path: Path) -> None:
    system = tmp_path / "var-lib" / "canhgac-agent"
    system.parent.mkdir()
    env = {"HOME": str(tmp_path / "home")}
    assert default_state_dir(env, system) == system


def test_default_state_dir_falls_back_to_xdg_then_home(tmp_path: Path) -> None:
    unwritable = tmp_path / "missing-parent" / "deeper" / "canhgac-agent"
    home = tmp_path / "home"
    xdg = {"XDG_STATE_HOME": str(tmp_path / "xdg"), "HOME": str(home)}
    assert default_state_dir(xdg, unwritable) == tmp_path / "xdg" / "canhgac-agent"
    relative = {"XDG_STATE_HOME": "relative/dir", "HOME": str(home)}
    assert default_state_dir(relative, unwritable) == home / ".local/state/canhgac-agent"


@pytest.mark.parametrize("searchable", [True, False])
def test_an_unprivileged_user_falls_back_from_a_system_dir_it_cannot_write(
    tmp_path: Path, searchable: bool
) -> None:
    # searchable: the directory exists but is not writable; otherwise the user cannot
    # even look inside its parent (pytest's per-user temporary directory is private).
    base = Path(tempfile.mkdtemp(prefix="canhgac-state-", dir="/tmp")) if searchable else tmp_path
    try:
        base.chmod(0o755)
        system = base / "canhgac-agent"
        system.mkdir(mode=0o755)
        if os.geteuid() != 0:
            system.chmod(0o555)
        home = tmp_path / "home"
        chosen = as_unprivileged(lambda: str(default_state_dir({"HOME": str(home)}, system)))
        assert Path(chosen) == home / ".local/state/canhgac-agent"
    finally:
        if searchable:
            (base / "canhgac-agent").chmod(0o755)
            shutil.rmtree(base)
