"""home_directories and log_files: on trees made with real modes and owners, and the
log walk against `find` on this machine's /var/log."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from agent.collectors.base import CollectContext
from agent.collectors.homedirs import collect_home_directories
from agent.collectors.logfiles import collect_log_files
from tests.agent.privileges import as_unprivileged
from tests.support import require_root, require_tool

PASSWD = (
    "root:x:0:0:root:/root:/bin/bash\n"
    "www-data:x:33:33:www-data:/var/www:/usr/sbin/nologin\n"
    "an:x:1000:1000:Nguyen Van An:/home/an:/bin/bash\n"
    "binh:x:1001:1001::/home/binh:/bin/bash\n"
    "svc:x:1002:1002::/home/svc:/usr/sbin/nologin\n"
    "gone:x:1003:1003::/home/gone:/bin/bash\n"
    "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n"
)


def test_home_directories(tmp_path: Path) -> None:
    require_root()  # chown to the accounts' uids
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc/passwd").write_text(PASSWD)
    for name, mode, uid in (("an", 0o755, 1000), ("binh", 0o700, 1000), ("svc", 0o777, 1002)):
        (tmp_path / "home" / name).mkdir(parents=True)
        os.chmod(tmp_path / "home" / name, mode)
        os.chown(tmp_path / "home" / name, uid, uid)
    homes = collect_home_directories(CollectContext(root=tmp_path)).data["homes"]
    assert homes == [
        {"user": "an", "uid": 1000, "home": "/home/an", "exists": True, "mode": "0755",
         "owner_matches": True, "group_writable": False, "others_access": True},
        {"user": "binh", "uid": 1001, "home": "/home/binh", "exists": True, "mode": "0700",
         "owner_matches": False, "group_writable": False, "others_access": False},
        {"user": "gone", "uid": 1003, "home": "/home/gone", "exists": False, "mode": None,
         "owner_matches": None},
    ]  # fmt: skip


def test_log_files_modes(tmp_path: Path) -> None:
    log = tmp_path / "var/log"
    (log / "app").mkdir(parents=True)
    (log / "private").mkdir()
    for name, mode in (("auth.log", 0o640), ("app/portal.log", 0o666), ("dpkg.log", 0o644)):
        (log / name).write_text("x\n")
        os.chmod(log / name, mode)
    os.symlink("/etc/shadow", log / "link")  # not followed
    data = collect_log_files(CollectContext(root=tmp_path)).data
    assert data["complete"] is True
    assert [(f["path"], f["mode"], f["others_write"]) for f in data["files"]] == [
        ("/var/log/app/portal.log", "0666", True),
        ("/var/log/dpkg.log", "0644", False),
    ]


def test_an_unlistable_log_directory_makes_the_walk_unknown() -> None:
    require_root()  # to make a directory another user cannot list
    root = Path(tempfile.mkdtemp(prefix="canhgac-logs-", dir="/tmp"))  # nobody can enter
    try:
        os.chmod(root, 0o755)
        (root / "var/log/private").mkdir(parents=True)
        os.chmod(root / "var", 0o755)
        os.chmod(root / "var/log", 0o755)
        os.chmod(root / "var/log/private", 0o700)

        def run() -> list[object]:
            collected = collect_log_files(CollectContext(root=root))
            return [collected.data, [[i.kind.value, i.reason] for i in collected.issues]]

        data, issues = as_unprivileged(run)
        assert data == {"complete": False, "files": None}
        assert issues == [["permission", "/var/log/private: Permission denied"]]
    finally:
        shutil.rmtree(root)


def test_log_walk_matches_find_here() -> None:
    require_tool("find")
    out = subprocess.run(
        ["find", "/var/log", "-xdev", "-type", "f", "(", "-perm", "/o=rwx", "-o", "-perm", "/g=w", ")"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    data = collect_log_files(CollectContext()).data
    assert data["complete"] is True
    assert [f["path"] for f in data["files"]] == sorted(out.split())
