"""The core_dumps collector: limits.conf and its .d files, core_pattern and
systemd-coredump's Storage, on built roots (the limits lines are limits.conf(5)'s
format), and this machine's own core_pattern."""

from __future__ import annotations

from pathlib import Path

from agent.collectors.base import CollectContext
from agent.collectors.coredump import collect_core_dumps, parse_limits
from tests.agent.certs import NOW
from tests.agent.fakes import FakeSystem, RecordedRunner
from tests.support import require


def _ctx(root: Path) -> CollectContext:
    return CollectContext(root=root, run=RecordedRunner(), system=FakeSystem(), now=lambda: NOW)


def _write(root: Path, host_path: str, text: str) -> None:
    path = root / host_path.lstrip("/")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_restricted_host(tmp_path: Path) -> None:
    _write(
        tmp_path, "/etc/security/limits.conf", "#<domain> <type> <item> <value>\n*  soft core 0\n"
    )
    _write(tmp_path, "/etc/security/limits.d/90-core.conf", "*\thard\tcore\t0\n")
    _write(
        tmp_path,
        "/proc/sys/kernel/core_pattern",
        "|/lib/systemd/systemd-coredump %P %u %g %s %t 9223372036854775808 %h\n",
    )
    _write(tmp_path, "/etc/systemd/coredump.conf.d/50-off.conf", "[Coredump]\nStorage=none\n")
    collected = collect_core_dumps(_ctx(tmp_path))
    assert collected.issues == ()
    assert collected.data == {
        "hard_limit": "0",
        "core_pattern": "|/lib/systemd/systemd-coredump %P %u %g %s %t 9223372036854775808 %h",
        "handler": "systemd-coredump",
        "systemd_storage": "none",
    }


def test_debian_defaults(tmp_path: Path) -> None:
    # limits.conf as shipped (all comments), plain `core` pattern, no coredump.conf
    _write(tmp_path, "/etc/security/limits.conf", "#*               soft    core            0\n")
    _write(tmp_path, "/proc/sys/kernel/core_pattern", "core\n")
    data = collect_core_dumps(_ctx(tmp_path)).data
    assert data == {
        "hard_limit": None,
        "core_pattern": "core",
        "handler": None,
        "systemd_storage": "external",
    }


def test_later_lines_win_and_user_specific_lines_do_not_count() -> None:
    assert parse_limits("* hard core 0\n* - core unlimited\n") == "unlimited"
    assert parse_limits("@admins hard core 0\nroot hard core 0\n") is None


def test_this_machine_core_pattern() -> None:
    real = Path("/proc/sys/kernel/core_pattern")
    require(real.exists(), "/proc/sys/kernel/core_pattern is not there")
    data = collect_core_dumps(CollectContext()).data
    assert data["core_pattern"] == real.read_text().strip()
