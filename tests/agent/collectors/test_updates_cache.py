"""The pending-updates answer reused while apt's inputs are unchanged: for real, with
the real `apt list --upgradable` of this Debian machine and the real runner; the
inputs' fingerprint is taken under a test root whose files the test changes (the
host's dpkg status is not the test's to touch)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import pytest

from agent.collectors.base import CollectContext
from agent.collectors.platforms import cache as cache_module
from agent.collectors.platforms.cache import CACHE, DEBIAN_INPUTS, OutputCache, fingerprint_of
from agent.collectors.platforms.debian import (
    APT_LIST,
    APT_TIMEOUT,
    DPKG_QUERY,
    DPKG_TIMEOUT,
    DebianPlatform,
    parse_dpkg_query,
)
from agent.runner import CommandResult, SubprocessRunner
from tests.agent.fakes import RecordedRunner
from tests.support import require_tool


class CountingRunner(SubprocessRunner):
    """The real runner, counting the commands it really ran."""

    def __init__(self) -> None:
        super().__init__()
        self.ran: list[tuple[str, ...]] = []

    def __call__(self, argv: Sequence[str], timeout: float) -> CommandResult:
        self.ran.append(tuple(argv))
        return super().__call__(argv, timeout)


def _apt_root(tmp_path: Path) -> Path:
    (tmp_path / "var/lib/dpkg").mkdir(parents=True)
    (tmp_path / "var/lib/dpkg/status").write_text("Package: a\n")
    lists = tmp_path / "var/lib/apt/lists"
    lists.mkdir(parents=True)
    (lists / "deb.debian.org_debian_dists_bookworm_main_binary-amd64_Packages").write_text("x")
    return tmp_path


def test_reused_while_unchanged_and_run_again_on_each_change(tmp_path: Path) -> None:
    require_tool("apt")
    root = _apt_root(tmp_path)
    runner = CountingRunner()
    ctx = CollectContext(root=root, run=runner)
    cache = OutputCache()
    first = cache.run(ctx, APT_LIST, APT_TIMEOUT, DEBIAN_INPUTS)
    assert cache.run(ctx, APT_LIST, APT_TIMEOUT, DEBIAN_INPUTS) == first
    assert (len(runner.ran), cache.hits, cache.misses) == (1, 1, 1)

    status = root / "var/lib/dpkg/status"
    status.write_text("Package: a\n\nPackage: b\n")  # dpkg installed something
    assert cache.run(ctx, APT_LIST, APT_TIMEOUT, DEBIAN_INPUTS) == first
    assert len(runner.ran) == 2

    new_list = root / "var/lib/apt/lists/security.debian.org_dists_bookworm-security_Release"
    new_list.write_text("y")  # apt-get update fetched a new list
    cache.run(ctx, APT_LIST, APT_TIMEOUT, DEBIAN_INPUTS)
    assert len(runner.ran) == 3

    lists = root / "var/lib/apt/lists"
    package_list = next(lists.glob("*_Packages"))
    stamp = package_list.stat()
    package_list.write_text("z")  # same size, refreshed in place
    os.utime(package_list, ns=(stamp.st_atime_ns, stamp.st_mtime_ns + 10**9))
    cache.run(ctx, APT_LIST, APT_TIMEOUT, DEBIAN_INPUTS)
    assert len(runner.ran) == 4
    cache.run(ctx, APT_LIST, APT_TIMEOUT, DEBIAN_INPUTS)
    assert len(runner.ran) == 4


def test_too_old_an_answer_is_not_reused(tmp_path: Path) -> None:
    require_tool("apt")
    now = [0.0]
    cache = OutputCache(clock=lambda: now[0], max_age=60)
    runner = CountingRunner()
    ctx = CollectContext(root=_apt_root(tmp_path), run=runner)
    cache.run(ctx, APT_LIST, APT_TIMEOUT, DEBIAN_INPUTS)
    now[0] = 59
    cache.run(ctx, APT_LIST, APT_TIMEOUT, DEBIAN_INPUTS)
    now[0] = 61
    cache.run(ctx, APT_LIST, APT_TIMEOUT, DEBIAN_INPUTS)
    assert len(runner.ran) == 2


def test_a_recorded_runner_is_never_cached(tmp_path: Path) -> None:
    # Recorded outputs differ from test to test under the same root: never reused.
    listing = CommandResult(tuple(APT_LIST), 0, "Listing...\n", "")
    recorded = RecordedRunner({tuple(APT_LIST): listing})
    ctx = CollectContext(root=_apt_root(tmp_path), run=recorded)
    cache = OutputCache()
    cache.run(ctx, APT_LIST, APT_TIMEOUT, DEBIAN_INPUTS)
    cache.run(ctx, APT_LIST, APT_TIMEOUT, DEBIAN_INPUTS)
    assert (cache.hits, cache.misses) == (0, 0)
    assert recorded.calls == [tuple(APT_LIST)] * 2


def test_an_unreadable_input_means_no_reuse(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = _apt_root(tmp_path)
    ctx = CollectContext(root=root)
    assert fingerprint_of(ctx, DEBIAN_INPUTS) is not None
    monkeypatch.setattr(cache_module, "MAX_DIR_ENTRIES", 0)  # a directory too big to stamp
    assert fingerprint_of(ctx, DEBIAN_INPUTS) is None


def test_the_host_fingerprint_is_stable_between_two_reads() -> None:
    ctx = CollectContext()
    first = fingerprint_of(ctx, DEBIAN_INPUTS)
    assert first is not None
    assert any(stamp[0] == "/var/lib/dpkg/status" and stamp[1] is not None for stamp in first)
    assert fingerprint_of(ctx, DEBIAN_INPUTS) == first


def test_the_dpkg_listing_is_run_once_for_both_domains_while_dpkg_is_unchanged(
    tmp_path: Path,
) -> None:
    require_tool("dpkg-query")
    root = _apt_root(tmp_path)
    runner = CountingRunner()
    ctx = CollectContext(root=root, run=runner)
    platform = DebianPlatform()
    CACHE.clear()
    try:
        packages = platform.packages(ctx)
        assert platform.packages(ctx) == packages
        assert runner.ran.count(tuple(DPKG_QUERY)) == 1
        assert packages == [
            {k: v for k, v in row.items() if not k.startswith("_")}
            for row in parse_dpkg_query(runner(DPKG_QUERY, DPKG_TIMEOUT).stdout)
            if row["_installed"]
        ]
        runner.ran.clear()

        (root / "var/lib/dpkg/status").write_text("Package: a\n\nPackage: b\n")
        platform.packages(ctx)
        assert runner.ran.count(tuple(DPKG_QUERY)) == 1  # dpkg installed something

        (root / "var/lib/dpkg/updates").mkdir()
        (root / "var/lib/dpkg/updates/0001").write_text("Package: b\n")
        platform.packages(ctx)
        assert runner.ran.count(tuple(DPKG_QUERY)) == 2  # an interrupted dpkg's journal
    finally:
        CACHE.clear()
