"""The one file-read helper tells absent, denied and failed apart."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import pytest

from agent.collectors.base import (
    CollectContext,
    CollectorError,
    ErrorKind,
    FileDeniedError,
    FileReadError,
    read_file,
)
from tests.agent.privileges import as_unprivileged


def test_absent_is_none_and_a_directory_is_a_failure(tmp_path: Path) -> None:
    ctx = CollectContext(root=tmp_path)
    assert read_file(ctx, "/etc/missing.conf") is None
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc/file").write_text("x")
    assert read_file(ctx, "/etc/file/below") is None  # a file in the way: not there
    (tmp_path / "etc/dir.conf").mkdir()
    with pytest.raises(FileReadError) as failed:
        read_file(ctx, "/etc/dir.conf")
    assert failed.value.issue.kind is ErrorKind.FAILED
    assert failed.value.reason.startswith("/etc/dir.conf: ")


def test_a_denied_read_is_a_permission_issue_naming_the_path() -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root to create a file another user cannot read")
    root = Path(tempfile.mkdtemp(prefix="canhgac-files-", dir="/tmp"))
    try:
        os.chmod(root, 0o755)
        (root / "etc").mkdir(mode=0o755)
        (root / "etc/secret.conf").write_text("key=value\n")
        os.chmod(root / "etc/secret.conf", 0o000)

        def run() -> Any:
            try:
                read_file(CollectContext(root=root), "/etc/secret.conf")
            except CollectorError as e:
                return [type(e).__name__, e.issue.kind.value, e.issue.reason]
            return None

        assert as_unprivileged(run) == [
            FileDeniedError.__name__,
            "permission",
            "/etc/secret.conf: Permission denied",
        ]
    finally:
        shutil.rmtree(root)
