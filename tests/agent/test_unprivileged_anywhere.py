"""The tests that drop privileges pass wherever the checkout is.

A clone under /root, or in any directory other users cannot traverse (Debian 12's
home directories are 0700), once made `as_unprivileged` children fail as soon as they
read a module or a data file from the checkout. Here the tree is copied into a 0700
directory and every test module that calls `as_unprivileged` runs there, as root,
with the same interpreter and PYTHONPATH at the copy.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.agent.privileges import as_unprivileged
from tests.support import require

ROOT = Path(__file__).resolve().parents[2]
COPIED = ("agent", "rules", "server", "tests", "pyproject.toml")
CALL = "as_unprivileged("


def privileged_test_files(tests: Path) -> list[Path]:
    """Every test module that drops privileges, except this one."""
    return sorted(
        path
        for path in tests.rglob("test_*.py")
        if path.name != Path(__file__).name and CALL in path.read_text("utf-8")
    )


def copy_tree(destination: Path) -> None:
    ignored = shutil.ignore_patterns("__pycache__", "*.pyc", ".pytest_cache")
    for name in COPIED:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, destination / name, ignore=ignored, symlinks=True)
        else:
            shutil.copy2(source, destination / name)


@pytest.mark.integration
def test_privilege_dropping_tests_pass_from_a_0700_directory(tmp_path: Path) -> None:
    require(os.geteuid() == 0, "needs root: only root can drop to nobody")
    private = tmp_path / "private"
    private.mkdir()
    private.chmod(0o700)
    checkout = private / "canhgac"
    checkout.mkdir()
    copy_tree(checkout)
    # The premise: nobody cannot reach the copy at all.
    assert as_unprivileged(lambda: os.access(checkout / "agent", os.R_OK)) is False
    files = privileged_test_files(checkout / "tests")
    assert len(files) >= 3, files
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *map(str, files)],
        cwd=checkout,
        env={**os.environ, "PYTHONPATH": str(checkout)},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-3000:]
    assert " passed" in done.stdout and " skipped" not in done.stdout, done.stdout[-3000:]
