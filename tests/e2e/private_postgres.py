"""A PostgreSQL cluster of a test's own: initdb in a temp dir, a free loopback port,
stopped and removed at the end. Never the shared dev cluster: a test that crashes and
restarts its database must own it.

Uses Debian's binaries (/usr/lib/postgresql/*/bin) run as the `postgres` user, as
.ci/run does; the test needs root for that (skipped on a developer machine without
it, failed under CI=true).
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.support import free_port, require, require_root


@dataclass(frozen=True)
class PrivatePostgres:
    bin_dir: Path
    directory: Path
    port: int

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://canhgac:canhgac@127.0.0.1:{self.port}/canhgac"

    def _ctl(self, *args: str) -> None:
        _as_postgres(self.bin_dir / "pg_ctl", "-D", str(self.directory / "data"), *args)

    def start(self) -> None:
        # -o is pg_ctl's own option string; it holds only our port and temp dir.
        options = f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.directory}"
        self._ctl("-l", str(self.directory / "log"), "-w", "-o", options, "start")

    def crash(self) -> None:
        """Immediate shutdown: backends quit without a checkpoint, as in a crash;
        the next start replays the WAL."""
        self._ctl("-m", "immediate", "-w", "stop")


def _as_postgres(program: Path, *args: str) -> None:
    """Run a PostgreSQL program as the `postgres` user (an argument list, no shell)."""
    subprocess.run(
        [str(program), *args], user="postgres", check=True, capture_output=True, timeout=300
    )


def _bin_dir() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(found[-1]).parent if found else None


@contextmanager
def private_postgres() -> Iterator[PrivatePostgres]:
    require_root()
    bin_dir = _bin_dir()
    require(bin_dir is not None, "PostgreSQL server binaries are not installed (postgresql)")
    assert bin_dir is not None
    user = pwd.getpwnam("postgres")
    directory = Path(tempfile.mkdtemp(prefix="canhgac-private-pg-"))
    os.chown(directory, user.pw_uid, user.pw_gid)
    cluster = PrivatePostgres(bin_dir, directory, free_port())
    try:
        data = str(directory / "data")
        _as_postgres(bin_dir / "initdb", "-D", data, "-A", "trust", "-U", "postgres", "--no-sync")
        cluster.start()
        _as_postgres(
            bin_dir / "psql",
            *("-h", "127.0.0.1", "-p", str(cluster.port), "-U", "postgres"),
            *("-q", "-v", "ON_ERROR_STOP=1"),
            *("-c", "CREATE ROLE canhgac LOGIN PASSWORD 'canhgac'"),
            *("-c", "CREATE DATABASE canhgac OWNER canhgac"),
        )
        yield cluster
    finally:
        # Not running (start failed, or already stopped) is fine: nothing to stop.
        with contextlib.suppress(subprocess.CalledProcessError):
            cluster.crash()
        shutil.rmtree(directory, ignore_errors=True)
