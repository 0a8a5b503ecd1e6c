"""The pending-updates listing read from apt's binary caches (platforms.aptlist): for
real, with this Debian machine's apt, lists and dpkg status, the real runner, and real
private mount namespaces (unshare) with read-only bind mounts.

This container's apt configuration (Debian's docker-clean) disables the caches, so
each test builds them in a test root's var/cache/apt, by running apt as root pointed
there (it writes them, as `apt update` does on a host), valid for the host's lists and
status, or stale (built from a changed copy of the status, or from no lists). The
host's /var is never written: the tests compare stamps and contents before and after,
and trace apt's processes with strace for any write, rename or removal.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from agent.collectors.base import CollectContext, Issue
from agent.collectors.platforms import aptlist
from agent.collectors.platforms.aptlist import (
    APT_LIST,
    PRIVATE_NAMESPACE,
    cached_list_argv,
    upgradable_listing,
)
from agent.collectors.platforms.cache import CACHE
from agent.collectors.platforms.debian import DebianPlatform
from agent.errors import CommandNotFound
from agent.runner import CommandResult, SubprocessRunner
from tests.support import require_root, require_tool

TIMEOUT = 60.0
# System calls that change a file system (strace's %file class has the path-taking
# ones; ftruncate and the fd-based ones are added).
WRITE_CALLS = re.compile(
    r"\b(rename|renameat2?|unlink|unlinkat|mkdir|mkdirat|rmdir|truncate|ftruncate|"
    r"chmod|fchmod|fchmodat|chown|fchown|fchownat|lchown|link|linkat|symlink|symlinkat|"
    r"utimensat|mknod|mknodat|creat)\("
)
WRITE_OPEN = re.compile(
    r'\bopen(at)?\([^"]*"(?P<path>[^"]+)", [^)]*(O_WRONLY|O_RDWR|O_CREAT|O_TRUNC)'
)


class TracingRunner(SubprocessRunner):
    """The real runner, running each command under strace (all its processes) and
    keeping the commands and the traces."""

    def __init__(self, directory: Path) -> None:
        super().__init__()
        self.directory = directory
        self.ran: list[tuple[str, ...]] = []
        self.traces: list[Path] = []

    def __call__(self, argv: Sequence[str], timeout: float) -> CommandResult:
        trace = self.directory / f"trace-{len(self.traces)}.txt"
        self.ran.append(tuple(argv))
        self.traces.append(trace)
        traced = ["strace", "-f", "-qq", "-o", str(trace), "-e", "trace=%file,ftruncate"]
        result = super().__call__([*traced, *argv], timeout)
        return CommandResult(tuple(argv), result.returncode, result.stdout, result.stderr)

    def writes(self) -> list[str]:
        """Every traced call that could change a file, but apt's own /dev/null and the
        unnamed files (O_TMPFILE, gone at close) it decompresses lz4 lists into while
        building in memory, in $TMPDIR: it makes them as the agent ran it before too."""
        found = []
        for trace in self.traces:
            for line in trace.read_text().splitlines():
                opened = WRITE_OPEN.search(line)
                if opened and opened["path"] == "/dev/null":
                    continue
                if opened and "O_TMPFILE" in line and not opened["path"].startswith("/var"):
                    continue
                if opened or WRITE_CALLS.search(line):
                    found.append(line)
        return found

    def opened_read_only(self, path: Path) -> bool:
        pattern = f'"{path}", O_RDONLY'
        return any(pattern in trace.read_text() for trace in self.traces)


def _today(extra: Sequence[str] = ()) -> str:
    """`apt list --upgradable` as the agent ran it before this module (as root)."""
    argv = [APT_LIST[0], *extra, *APT_LIST[1:]]
    return subprocess.run(argv, capture_output=True, text=True, check=True).stdout


def _build_caches(root: Path, *options: str) -> tuple[Path, Path]:
    """apt's two caches in `root`/var/cache/apt, built by apt as root (with `options`,
    e.g. another status file to make them stale for the host)."""
    directory = root / "var/cache/apt"
    directory.mkdir(parents=True)
    directory.chmod(0o755)
    pkgcache, srcpkgcache = directory / "pkgcache.bin", directory / "srcpkgcache.bin"
    argv = ["apt", "-o", f"Dir::Cache::pkgcache={pkgcache}"]
    argv += ["-o", f"Dir::Cache::srcpkgcache={srcpkgcache}", *options, "list", "--upgradable"]
    subprocess.run(argv, capture_output=True, check=True)
    assert pkgcache.is_file() and srcpkgcache.is_file()
    return pkgcache, srcpkgcache


def _state(paths: Sequence[Path]) -> list[tuple[str, int, int, int, str]]:
    return [
        (str(p), p.stat().st_ino, p.stat().st_size, p.stat().st_mtime_ns, _sha256(p)) for p in paths
    ]


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def root() -> Iterator[Path]:
    """A test root, 0755 like a real /var (its caches are built there by each test)."""
    require_root()
    require_tool("apt")
    require_tool("unshare")
    require_tool("strace")
    with tempfile.TemporaryDirectory(prefix="canhgac-aptcache-") as name:
        path = Path(name)
        path.chmod(0o755)
        yield path


def test_valid_caches_are_read_through_a_read_only_mount_and_answer_as_today(root: Path) -> None:
    caches = _build_caches(root)
    before = _state(caches)
    traces = root / "traces"
    traces.mkdir()
    runner = TracingRunner(traces)
    ctx = CollectContext(root=root, run=runner)

    listing = upgradable_listing(ctx, TIMEOUT)

    assert listing == _today()
    assert "[upgradable from:" in listing  # this machine has pending updates to compare
    assert len(runner.ran) == 1 and runner.ran[0][: len(PRIVATE_NAMESPACE)] == tuple(
        PRIVATE_NAMESPACE
    )
    assert runner.opened_read_only(caches[0])  # the reading path, not a rebuild
    assert runner.writes() == []
    assert _state(caches) == before
    assert sorted(p.name for p in caches[0].parent.iterdir()) == [p.name for p in caches]


@pytest.mark.parametrize("stale", ["status", "lists"])
def test_a_stale_cache_is_left_as_it_is_and_the_answer_is_todays(root: Path, stale: str) -> None:
    changed = root / "changed"
    changed.mkdir()
    if stale == "status":
        status = changed / "status"
        text = Path("/var/lib/dpkg/status").read_text()
        status.write_text(text + "\nPackage: canhgac-test-only\nStatus: install ok installed\n")
        option = f"Dir::State::status={status}"
    else:
        option = f"Dir::State::Lists={changed}/"  # no lists: both caches describe none
    caches = _build_caches(root, "-o", option)
    before = _state(caches)
    traces = root / "traces"
    traces.mkdir()
    runner = TracingRunner(traces)

    listing = upgradable_listing(CollectContext(root=root, run=runner), TIMEOUT)

    assert listing == _today()
    assert runner.ran[0][: len(PRIVATE_NAMESPACE)] == tuple(PRIVATE_NAMESPACE)
    assert len(runner.ran) == 1  # apt built in memory without failing: no second run
    assert runner.writes() == []
    assert _state(caches) == before
    assert sorted(p.name for p in caches[0].parent.iterdir()) == [p.name for p in caches]


def test_the_updates_domain_writes_nothing_under_var_on_this_host(tmp_path: Path) -> None:
    """The whole updates collector as it runs here (caches absent: the in-memory path),
    every command traced: nothing is written, renamed or removed anywhere."""
    require_root()
    require_tool("apt")
    require_tool("strace")
    runner = TracingRunner(tmp_path)
    CACHE.forget(APT_LIST)
    issues: list[Issue] = []
    facts = DebianPlatform().updates(CollectContext(run=runner), issues)
    assert tuple(APT_LIST) in runner.ran
    assert [p["name"] for p in facts["pending"]] != []
    assert runner.writes() == []


@pytest.mark.parametrize(
    "spoil",
    [
        "caches absent",
        "one cache absent",
        "directory group-writable",
        "cache owned by another user",
        "cache is a link",
        "directory is a link",
    ],
)
def test_the_reading_path_is_refused_when_it_could_differ_or_write(root: Path, spoil: str) -> None:
    ctx = CollectContext(root=root)
    if spoil == "caches absent":
        assert cached_list_argv(ctx) is None
        return
    pkgcache, srcpkgcache = _build_caches(root)
    assert cached_list_argv(ctx) is not None  # the baseline: allowed before the change
    if spoil == "one cache absent":
        srcpkgcache.unlink()
    elif spoil == "directory group-writable":
        pkgcache.parent.chmod(0o775)
    elif spoil == "cache owned by another user":
        os.chown(pkgcache, 65534, 65534)
    elif spoil == "cache is a link":
        pkgcache.rename(root / "elsewhere.bin")
        pkgcache.symlink_to(root / "elsewhere.bin")
    else:
        pkgcache.parent.rename(root / "elsewhere")
        pkgcache.parent.symlink_to(root / "elsewhere")
    assert cached_list_argv(ctx) is None


class ScriptedRunner:
    """Recorded results for the namespace attempt (unshare missing, or an error from
    it, cannot be provoked here as root without changing the host); apt's real
    listing for APT_LIST."""

    def __init__(self, attempt: CommandResult | None) -> None:
        self.attempt = attempt
        self.ran: list[tuple[str, ...]] = []

    def __call__(self, argv: Sequence[str], timeout: float) -> CommandResult:
        self.ran.append(tuple(argv))
        if tuple(argv) == tuple(APT_LIST):
            return SubprocessRunner()(argv, timeout)
        if self.attempt is None:
            raise CommandNotFound("unshare")
        return self.attempt


@pytest.mark.parametrize(
    ("returncode", "stderr"),
    [
        (None, ""),
        (1, "unshare: unshare failed: Operation not permitted\n"),
        (32, "mount: /var/cache/apt: permission denied.\n"),
        (0, "E: Could not open file /var/lib/dpkg/status - open (13: Permission denied)\n"),
    ],
)
def test_a_failure_or_no_unshare_falls_back_to_todays_command(
    root: Path, returncode: int | None, stderr: str
) -> None:
    _build_caches(root)
    argv = cached_list_argv(CollectContext(root=root))
    assert argv is not None
    attempt = None if returncode is None else CommandResult(tuple(argv), returncode, "x", stderr)
    runner = ScriptedRunner(attempt)
    listing = upgradable_listing(CollectContext(root=root, run=runner), TIMEOUT)
    assert listing == _today()
    assert runner.ran == [tuple(argv), tuple(APT_LIST)]


def test_apts_notices_and_warnings_are_not_failures() -> None:
    """apt runs as root on the same inputs as APT_LIST: it warns as APT_LIST would."""
    notice = "\nWARNING: apt does not have a stable CLI interface. Use with caution in scripts.\n"
    warning = "W: Target Packages (main/binary-amd64/Packages) is configured multiple times\n"
    assert not aptlist._failed(notice + warning)
    assert aptlist._failed(notice + "E: The package cache file is corrupted\n")


PROBE = """
import json, sys
from pathlib import Path
from agent.collectors.base import CollectContext
from agent.collectors.platforms.aptlist import cached_list_argv, upgradable_listing
from agent.runner import SubprocessRunner

class Recording(SubprocessRunner):
    ran = []
    def __call__(self, argv, timeout):
        self.ran.append(list(argv))
        return super().__call__(argv, timeout)

runner = Recording()
ctx = CollectContext(root=Path(sys.argv[1]), run=runner)
argv = cached_list_argv(ctx)
print(json.dumps({"argv": argv, "listing": upgradable_listing(ctx, 60), "ran": runner.ran}))
"""


@pytest.mark.parametrize("stale", [False, True])
def test_on_a_read_only_mount_apt_reads_the_caches_directly(root: Path, stale: bool) -> None:
    """As under the agent's systemd units (ProtectSystem=strict): the cache directory
    is a read-only bind mount in a private mount namespace of the probe's own (the
    host's mounts are not changed), so apt runs as the agent does, without unshare."""
    require_tool("unshare")
    options: tuple[str, ...] = ()
    if stale:
        status = root / "status"
        status.write_text(Path("/var/lib/dpkg/status").read_text() + "\nPackage: canhgac-x\n")
        options = ("-o", f"Dir::State::status={status}")
    caches = _build_caches(root, *options)
    before = _state(caches)
    script = 'mount -n --bind "$0" "$0" && mount -n -o remount,bind,ro "$0" && exec "$@"'
    argv = ["unshare", "-m", "--propagation", "private", "--", "sh", "-c", script]
    argv += [str(caches[0].parent), sys.executable, "-c", PROBE, str(root)]
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    done = subprocess.run(argv, capture_output=True, text=True, check=True, env=env)
    probe = json.loads(done.stdout)

    expected = ["apt", "-o", f"Dir::Cache::pkgcache={caches[0]}"]
    expected += ["-o", f"Dir::Cache::srcpkgcache={caches[1]}", "list", "--upgradable"]
    assert probe["argv"] == expected
    assert probe["ran"] == [expected]  # no warning, so no second run
    assert probe["listing"] == _today()
    assert _state(caches) == before
    assert sorted(p.name for p in caches[0].parent.iterdir()) == [p.name for p in caches]


def test_without_cap_sys_admin_the_in_memory_path_is_kept(root: Path) -> None:
    """Root without CAP_SYS_ADMIN (as in a systemd unit whose bounding set leaves it
    out, or a container) on a writable cache directory: no unshare attempt, APT_LIST."""
    require_tool("setpriv")
    _build_caches(root)
    assert cached_list_argv(CollectContext(root=root)) is not None  # with it: allowed
    drop = ["setpriv", "--bounding-set=-sys_admin", "--inh-caps=-sys_admin", "--"]
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    argv = [*drop, sys.executable, "-c", PROBE, str(root)]
    done = subprocess.run(argv, capture_output=True, text=True, check=True, env=env)
    probe = json.loads(done.stdout)
    assert probe["argv"] is None
    assert probe["ran"] == [APT_LIST]
    assert probe["listing"] == _today()
