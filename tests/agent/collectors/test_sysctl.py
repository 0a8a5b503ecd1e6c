"""The sysctl collector: on a root built from a recorded `sysctl -a`, on this machine's
own /proc/sys compared with the real `sysctl -a`, with a missing parameter and with a
denied one."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from agent.collectors.base import CollectContext, ErrorKind
from agent.collectors.sysctl import PARAMETERS, collect_sysctl, parse_sysctl_a, proc_path
from tests.agent.certs import NOW
from tests.agent.fakes import FakeSystem, RecordedRunner
from tests.agent.privileges import as_unprivileged
from tests.agent.recordings import recorded
from tests.support import require, require_tool

RECORDED = "sysctl-a.ci-sandbox.txt"


def _ctx(root: Path) -> CollectContext:
    return CollectContext(root=root, run=RecordedRunner(), system=FakeSystem(), now=lambda: NOW)


def _value(data: dict[str, Any], name: str) -> Any:
    for part in name.split("."):
        data = data[part]
    return data


def _root_from(tmp_path: Path, values: dict[str, str]) -> Path:
    for name in PARAMETERS:
        if name in values:
            path = tmp_path / proc_path(name).lstrip("/")
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(values[name] + "\n")
    return tmp_path


def test_recorded_sysctl_a(tmp_path: Path) -> None:
    values = parse_sysctl_a(recorded(RECORDED))
    collected = collect_sysctl(_ctx(_root_from(tmp_path, values)))
    assert collected.issues == ()
    data = collected.data
    # what that machine's kernel said (see tests/data/agent/README.md)
    assert _value(data, "kernel.randomize_va_space") == 2
    assert _value(data, "kernel.kptr_restrict") == 0
    assert _value(data, "net.ipv4.conf.all.accept_redirects") == 1
    assert _value(data, "net.ipv4.conf.default.accept_source_route") == 1
    assert _value(data, "net.ipv4.tcp_syncookies") == 1
    # that kernel has no Yama: unknown, and said to be absent from the kernel
    assert _value(data, "kernel.yama.ptrace_scope") is None
    assert data["unavailable"] == [n for n in PARAMETERS if n not in values]
    assert "kernel.yama.ptrace_scope" in data["unavailable"]


def test_this_machine_agrees_with_sysctl_a() -> None:
    sysctl = require_tool("sysctl")
    require(Path("/proc/sys/kernel").is_dir(), "/proc/sys is not mounted")
    real = parse_sysctl_a(
        subprocess.run([sysctl, "-a"], capture_output=True, text=True, check=False).stdout
    )
    data = collect_sysctl(_ctx(Path("/"))).data
    compared = [name for name in PARAMETERS if name in real]
    assert compared  # at least the IPv4 stack is there
    for name in compared:
        assert _value(data, name) == int(real[name]), name
    assert all(name not in real for name in data["unavailable"])


def test_denied_parameter_is_an_entry_and_null_not_unavailable() -> None:
    require(os.geteuid() == 0, "needs root to make a file another user cannot read")
    root = Path(tempfile.mkdtemp(prefix="canhgac-sysctl-", dir="/tmp"))
    try:
        os.chmod(root, 0o755)
        _root_from(root, {n: "1" for n in PARAMETERS})
        for directory in root.rglob("*"):
            if directory.is_dir():
                directory.chmod(0o755)
        (root / proc_path("kernel.kptr_restrict").lstrip("/")).chmod(0)
        data, issues = as_unprivileged(lambda: _plain(collect_sysctl(_ctx(root))))
    finally:
        shutil.rmtree(root)
    assert _value(data, "kernel.kptr_restrict") is None
    assert data["unavailable"] == []
    assert issues == [["permission", "sysctl: /proc/sys/kernel/kptr_restrict: Permission denied"]]


def test_a_value_that_is_not_a_number_is_a_failure(tmp_path: Path) -> None:
    root = _root_from(tmp_path, {"fs.suid_dumpable": "x"})
    collected = collect_sysctl(_ctx(root))
    assert _value(collected.data, "fs.suid_dumpable") is None
    assert [i.kind for i in collected.issues] == [ErrorKind.FAILED]


def _plain(collected: Any) -> list[Any]:
    return [collected.data, [[i.kind.value, i.reason] for i in collected.issues]]
