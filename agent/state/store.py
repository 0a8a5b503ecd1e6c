"""The agent's persistent state: the report sequence number and its epoch, when the
machine has no usable machine id a random agent id, and when each pending update was
first seen.

One small JSON file (`state.json`) in the state directory, rewritten atomically (a
temporary file in the same directory, fsync, then `os.replace`) under an exclusive
lock, so a crash or two concurrent runs never leave a torn file or reuse a sequence
number.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import tempfile
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path

from agent.errors import StateError

SYSTEM_STATE_DIR = Path("/var/lib/canhgac-agent")
STATE_FILE = "state.json"
LOCK_FILE = "state.lock"
APP_DIR = "canhgac-agent"
_EPOCH = re.compile(r"[A-Za-z0-9-]{1,64}")  # the schema's seq_epoch


def default_state_dir(
    environ: Mapping[str, str] | None = None, system_dir: Path = SYSTEM_STATE_DIR
) -> Path:
    """/var/lib/canhgac-agent when this user can write there, else the XDG state home."""
    env = os.environ if environ is None else environ
    if _writable(system_dir):
        return system_dir
    xdg = env.get("XDG_STATE_HOME", "")
    # The XDG spec says relative values are invalid and must be ignored.
    if xdg and os.path.isabs(xdg):
        return Path(xdg) / APP_DIR
    home = env.get("HOME") or str(Path.home())
    return Path(home) / ".local" / "state" / APP_DIR


def _writable(directory: Path) -> bool:
    try:
        if directory.exists():
            return directory.is_dir() and os.access(directory, os.W_OK | os.X_OK)
        parent = directory.parent
        return parent.is_dir() and os.access(parent, os.W_OK | os.X_OK)
    except OSError:
        # Path.exists() raises when a parent cannot be searched: not usable either.
        return False


def new_epoch() -> str:
    """A fresh `seq_epoch`: a random id, so a recreated state is never taken for the old one."""
    return str(uuid.uuid4())


@dataclass(frozen=True)
class AgentState:
    seq: int = 0  # the sequence number of the last report produced
    agent_id: str | None = None  # only set when it had to be generated randomly
    # Chosen with the state file; tells the collector when seq restarted from zero.
    seq_epoch: str | None = None
    # "name:arch=candidate" -> RFC 3339 time it was first seen pending (updates domain).
    pending_seen: Mapping[str, str] = field(default_factory=dict)
    # RFC 3339 time of the first collection that recorded pending updates: an update
    # first seen then was already pending, since a time nobody recorded.
    pending_watched_since: str | None = None


class StateStore:
    """Reads and updates `state.json` in `directory` (created on first write)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.path = directory / STATE_FILE

    def load(self) -> AgentState:
        try:
            text = self.path.read_text("utf-8")
        except FileNotFoundError:
            return AgentState()
        except OSError as e:
            raise StateError(f"cannot read {self.path}: {e.strerror or e}") from e
        return self._parse(text)

    def update(self, change: Callable[[AgentState], AgentState]) -> AgentState:
        """Apply `change` to the stored state and persist the result atomically.

        A state without an epoch (a new file, or one written by an older agent) gets
        one here, on its first use.
        """
        with self._locked():
            current = self.load()
            if current.seq_epoch is None:
                current = replace(current, seq_epoch=new_epoch())
            new = change(current)
            self._write(new)
            return new

    def next_seq(self) -> int:
        return self.update(lambda s: replace(s, seq=s.seq + 1)).seq

    def _parse(self, text: str) -> AgentState:
        try:
            raw = json.loads(text)
        except ValueError as e:
            raise StateError(f"{self.path} is not valid JSON ({e}); fix or remove it") from e
        if not isinstance(raw, dict):
            raise StateError(f"{self.path} must hold a JSON object; fix or remove it")
        seq = raw.get("seq", 0)
        agent_id = raw.get("agent_id")
        # bool is an int in Python; a boolean seq is corruption, not a number.
        if not isinstance(seq, int) or isinstance(seq, bool) or seq < 0:
            raise StateError(f"{self.path}: seq must be a non-negative integer")
        if agent_id is not None and not isinstance(agent_id, str):
            raise StateError(f"{self.path}: agent_id must be a string")
        epoch = raw.get("seq_epoch")
        if epoch is not None and not (isinstance(epoch, str) and _EPOCH.fullmatch(epoch)):
            raise StateError(f"{self.path}: seq_epoch must be 1-64 letters, digits or '-'")
        seen = raw.get("pending_seen", {})
        if not isinstance(seen, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in seen.items()
        ):
            raise StateError(f"{self.path}: pending_seen must map strings to timestamps")
        watched = raw.get("pending_watched_since")
        if watched is not None and not (isinstance(watched, str) and len(watched) <= 64):
            raise StateError(f"{self.path}: pending_watched_since must be a timestamp")
        return AgentState(
            seq=seq,
            agent_id=agent_id,
            seq_epoch=epoch,
            pending_seen=seen,
            pending_watched_since=watched,
        )

    @contextmanager
    def _locked(self) -> Iterator[None]:
        try:
            self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            handle = open(self.directory / LOCK_FILE, "a")  # noqa: SIM115 - held across the block
        except OSError as e:
            raise StateError(
                f"cannot use state directory {self.directory}: {e.strerror or e}"
                " (choose another with --state-dir)"
            ) from e
        with handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _write(self, state: AgentState) -> None:
        payload: dict[str, object] = {"seq": state.seq}
        if state.agent_id is not None:
            payload["agent_id"] = state.agent_id
        if state.seq_epoch is not None:
            payload["seq_epoch"] = state.seq_epoch
        if state.pending_seen:
            payload["pending_seen"] = dict(sorted(state.pending_seen.items()))
        if state.pending_watched_since is not None:
            payload["pending_watched_since"] = state.pending_watched_since
        data = (json.dumps(payload, indent=2) + "\n").encode("utf-8")
        tmp_name: str | None = None
        try:
            fd, tmp_name = tempfile.mkstemp(prefix=".state.", suffix=".tmp", dir=self.directory)
            with os.fdopen(fd, "wb") as tmp:
                tmp.write(data)
                tmp.flush()
                os.fsync(tmp.fileno())
            os.replace(tmp_name, self.path)
            tmp_name = None
            _fsync_directory(self.directory)
        except OSError as e:
            raise StateError(f"cannot write {self.path}: {e.strerror or e}") from e
        finally:
            if tmp_name is not None:
                Path(tmp_name).unlink(missing_ok=True)


def _fsync_directory(directory: Path) -> None:
    # Makes the rename itself durable: without it a power cut can bring back the old file.
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
