"""Helpers shared by the test suites.

`require` is how an integration test says it needs a real tool: on a developer
machine without it the test skips with the reason; under CI=true a missing tool is
a failure, because CI installs everything the tests need and a skip there would
hide a broken install step.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def require(condition: bool, reason: str) -> None:
    """Skip (developer machine) or fail (CI) when an integration prerequisite is missing."""
    if condition:
        return
    if in_ci():
        pytest.fail(f"integration prerequisite missing under CI: {reason}")
    pytest.skip(reason)


def require_tool(name: str) -> str:
    path = shutil.which(name)
    require(path is not None, f"{name} is not installed")
    assert path is not None
    return path


def require_root() -> None:
    require(os.geteuid() == 0, "needs root")


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port free on loopback right now (the usual bind-to-0 trick)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


@contextmanager
def mounted_tmpfs(path: Path, options: str) -> Iterator[Path]:
    """A real tmpfs mounted on `path` with mount `options` (root needed: skipped
    elsewhere, failed under CI), unmounted when the block ends."""
    require_root()
    path.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        [require_tool("mount"), "-t", "tmpfs", "-o", options, "tmpfs", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    require(done.returncode == 0, f"cannot mount a tmpfs: {done.stderr.strip()}")
    try:
        yield path
    finally:
        subprocess.run([require_tool("umount"), str(path)], check=True)
