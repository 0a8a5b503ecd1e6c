"""A directory the agent cannot write, for real: as root (which ignores mode bits) the
directory bind-mounted read-only onto itself (its files stay visible, as when a disk
is remounted read-only after an error), otherwise mode 0500. Used by the spool's unit tests
and the daemon's end-to-end test."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.support import require, require_tool


@contextmanager
def read_only_directory(path: Path) -> Iterator[Path]:
    path.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        path.chmod(0o500)
        try:
            yield path
        finally:
            path.chmod(0o700)
        return
    mount = require_tool("mount")
    bound = subprocess.run(
        [mount, "--bind", str(path), str(path)], capture_output=True, text=True, check=False
    )
    require(bound.returncode == 0, f"cannot bind-mount {path}: {bound.stderr.strip()}")
    try:
        done = subprocess.run(
            [mount, "-o", "remount,bind,ro", str(path)],
            capture_output=True,
            text=True,
            check=False,
        )
        require(done.returncode == 0, f"cannot remount {path} read-only: {done.stderr.strip()}")
        yield path
    finally:
        subprocess.run([require_tool("umount"), str(path)], check=True)
