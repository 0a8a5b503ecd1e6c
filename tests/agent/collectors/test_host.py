"""The host collector against fake root trees (Debian 12, Ubuntu 24.04, Rocky 9) and for
real on this machine."""

from __future__ import annotations

import os
import platform
import socket
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil
import pytest

from agent.collectors.base import CollectContext, ErrorKind
from agent.collectors.host import collect_host, prefix_length, read_machine_id
from agent.collectors.system import Nic, NicAddress, Uname
from agent.runner import CommandResult
from tests.agent.conftest import ROOTS
from tests.agent.fakes import FakeSystem, RecordedRunner


def _virt_runner() -> RecordedRunner:
    argv = ("systemd-detect-virt",)
    return RecordedRunner({argv: CommandResult(argv, 0, "kvm\n", "")})


def _ctx(root: Path, system: FakeSystem | None = None, fqdn: str | None = None) -> CollectContext:
    return CollectContext(
        root=root,
        run=_virt_runner(),
        system=system or FakeSystem(),
        fqdn_resolver=lambda _name: fqdn,
    )


def _envelope(host: dict[str, Any], errors: list[dict[str, str]] | None = None) -> dict[str, Any]:
    return {
        "schema": "canhgac.facts/v1",
        "report_id": "0b7c2f0e-8f0a-4d55-9a0c-6c1b1f2e3d4a",
        "agent_id": "test-agent",
        "seq": 1,
        "collected_at": "2026-01-01T00:00:00Z",
        "agent_version": "0.1.0",
        "host": host,
        "errors": errors or [],
    }


def test_debian12_root(validate: Callable[[Any], Any]) -> None:
    root = ROOTS / "debian12"
    collected = collect_host(_ctx(root, fqdn="debian-web-01.example.gov.vn"))
    host = collected.data
    assert collected.issues == ()
    assert host["hostname"] == "debian-web-01"
    assert host["fqdn"] == "debian-web-01.example.gov.vn"
    assert host["machine_id"] == (root / "etc/machine-id").read_text().strip()
    assert host["os"] == {
        "id": "debian",
        "id_like": [],
        "name": "Debian GNU/Linux",
        "pretty_name": "Debian GNU/Linux 12 (bookworm)",
        "version_id": "12",
        "version_codename": "bookworm",
        "family": "debian",
    }
    assert host["kernel"]["release"] == (root / "proc/sys/kernel/osrelease").read_text().strip()
    assert host["kernel"]["name"] == "Linux"
    # Values come from the tree, not from the (fake) live system.
    cpuinfo = (root / "proc/cpuinfo").read_text()
    assert host["cpu"]["logical"] == cpuinfo.count("processor\t:")
    assert host["cpu"]["model"] == "AMD EPYC"
    meminfo_kib = int((root / "proc/meminfo").read_text().split("\n")[0].split()[1])
    assert host["memory"]["total_bytes"] == meminfo_kib * 1024
    btime = next(
        int(line.split()[1])
        for line in (root / "proc/stat").read_text().splitlines()
        if line.startswith("btime")
    )
    assert host["boot_time"] == datetime.fromtimestamp(btime, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert host["architecture"] == "aarch64"  # from the fake uname
    validate(_envelope(host))


def test_ubuntu2404_falls_back_to_usr_lib_and_reports_missing_machine_id(
    validate: Callable[[Any], Any],
) -> None:
    root = ROOTS / "ubuntu2404"
    assert not (root / "etc/os-release").exists()
    collected = collect_host(_ctx(root))
    host = collected.data
    assert host["os"]["id"] == "ubuntu"
    assert host["os"]["id_like"] == ["debian"]
    assert host["os"]["version_id"] == "24.04"
    assert host["os"]["version_codename"] == "noble"
    assert host["os"]["pretty_name"] == "Ubuntu 24.04.1 LTS"
    assert host["os"]["family"] == "debian"
    assert host["fqdn"] is None
    assert host["machine_id"] is None
    assert [(i.kind, i.reason.split(":")[0]) for i in collected.issues] == [
        (ErrorKind.FAILED, "machine_id")
    ]
    assert "No such file" in collected.issues[0].reason
    assert host["cpu"] == {
        "logical": 4,
        "physical": 2,
        "model": "Intel(R) Xeon(R) Gold 6248 CPU @ 2.50GHz",
    }
    assert host["memory"] == {"total_bytes": 8123456 * 1024, "swap_total_bytes": 2097148 * 1024}
    assert host["boot_time"] == "2024-09-22T10:13:20Z"
    assert host["kernel"] == {
        "name": "Linux",
        "release": "6.8.0-45-generic",
        "version": "#45-Ubuntu SMP PREEMPT_DYNAMIC Fri Aug 30 12:02:04 UTC 2024",
    }
    validate(_envelope(host, [{"domain": "host", "kind": "failed", "reason": "x"}]))


def test_rocky9_uninitialized_machine_id_and_fallbacks(validate: Callable[[Any], Any]) -> None:
    system = FakeSystem(boot=1_714_000_000.5, physical_cpus=2, memory_value=(4 * 2**30, None))
    collected = collect_host(_ctx(ROOTS / "rocky9", system))
    host = collected.data
    assert host["os"]["id"] == "rocky"
    assert host["os"]["id_like"] == ["rhel", "centos", "fedora"]
    assert host["os"]["family"] == "rhel"
    assert host["os"]["version_codename"] is None
    assert host["machine_id"] is None
    assert any("valid machine id" in i.reason for i in collected.issues)
    # arm64 cpuinfo: count from the file, physical and model fall back.
    assert host["cpu"] == {"logical": 2, "physical": 2, "model": None}
    assert host["memory"] == {"total_bytes": 4 * 2**30, "swap_total_bytes": None}
    assert host["boot_time"] == "2024-04-24T23:06:40.500000Z"
    assert host["kernel"]["name"] == "Linux"  # no ostype file: from uname
    assert host["kernel"]["release"] == "5.14.0-427.13.1.el9_4.aarch64"
    validate(_envelope(host))


def test_empty_root_uses_os_release_defaults_and_system(
    tmp_path: Path, validate: Callable[[Any], Any]
) -> None:
    system = FakeSystem(uname_value=Uname("Linux", "node-x", "6.9.9", "#9", "riscv64"))
    collected = collect_host(_ctx(tmp_path, system))
    host = collected.data
    assert host["hostname"] == "node-x"
    assert host["os"]["id"] == "linux" and host["os"]["name"] == "Linux"
    assert host["os"]["family"] == "other"
    assert host["kernel"] == {"name": "Linux", "release": "6.9.9", "version": "#9"}
    assert host["cpu"] == {"logical": 8, "physical": 4, "model": None}
    kinds = {i.reason.split(":")[0] for i in collected.issues}
    assert kinds == {"machine_id", "os"}
    validate(_envelope(host))


def test_machine_id_that_is_a_directory_is_an_issue_not_a_crash(tmp_path: Path) -> None:
    (tmp_path / "etc/machine-id").mkdir(parents=True)
    collected = collect_host(_ctx(tmp_path))
    assert collected.data["machine_id"] is None
    assert any(i.reason.startswith("machine_id: cannot read") for i in collected.issues)


def test_hostile_values_are_clipped_to_fit_the_schema(
    tmp_path: Path, validate: Callable[[Any], Any]
) -> None:
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc/os-release").write_text(
        f'ID={"x" * 500}\nNAME="{"n" * 5000}"\nVERSION_ID={"9" * 100}\nID_LIKE="{" ".join(["a"] * 40)}"\n'
    )
    host = collect_host(_ctx(tmp_path)).data
    assert len(host["os"]["id"]) == 64
    assert len(host["os"]["id_like"]) == 16
    validate(_envelope(host))


def test_interfaces_mac_prefix_and_zone() -> None:
    system = FakeSystem(
        nics=[
            Nic(
                "eth0",
                (
                    NicAddress("link", "02:AB:CD:00:00:01"),
                    NicAddress("ipv4", "192.0.2.10", "255.255.255.0"),
                    NicAddress("ipv6", "fe80::1%eth0", "ffff:ffff:ffff:ffff::"),
                    NicAddress("ipv4", "192.0.2.11", None),
                ),
                True,
                1500,
            ),
            Nic(
                "ib0",
                (
                    NicAddress(
                        "link", "80:00:02:08:fe:80:00:00:00:00:00:00:00:00:00:00:00:00:00:01"
                    ),
                ),
            ),
        ]
    )
    interfaces = collect_host(_ctx(ROOTS / "debian12", system)).data["interfaces"]
    eth0, ib0 = interfaces
    assert eth0 == {
        "name": "eth0",
        "mac": "02:ab:cd:00:00:01",
        "is_up": True,
        "mtu": 1500,
        "addresses": [
            {"family": "ipv4", "address": "192.0.2.10", "prefix_length": 24},
            {"family": "ipv6", "address": "fe80::1", "prefix_length": 64},
            {"family": "ipv4", "address": "192.0.2.11", "prefix_length": None},
        ],
    }
    # A 20-byte InfiniBand hardware address is not a MAC in the schema's sense.
    assert ib0["mac"] is None and ib0["is_up"] is None


def test_failing_interfaces_keep_the_rest_of_the_domain() -> None:
    class Broken(FakeSystem):
        def interfaces(self) -> list[Nic]:
            raise OSError("netlink refused")

    collected = collect_host(_ctx(ROOTS / "debian12", Broken()))
    assert "interfaces" not in collected.data
    assert collected.data["hostname"] == "debian-web-01"
    assert [i.reason for i in collected.issues] == ["interfaces: OSError: netlink refused"]


def test_resolver_exception_becomes_an_issue() -> None:
    def boom(_name: str) -> str | None:
        raise RuntimeError("resolver exploded")

    ctx = CollectContext(
        root=ROOTS / "debian12", run=_virt_runner(), system=FakeSystem(), fqdn_resolver=boom
    )
    collected = collect_host(ctx)
    assert collected.data["fqdn"] is None
    assert any("resolver exploded" in i.reason for i in collected.issues)


@pytest.mark.parametrize(
    ("mask", "length"),
    [
        ("255.255.255.0", 24),
        ("255.255.255.255", 32),
        ("0.0.0.0", 0),
        ("255.255.254.0", 23),
        ("ffff:ffff:ffff:ffff::", 64),
        ("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 128),
        ("255.0.255.0", None),
        ("garbage", None),
        (None, None),
    ],
)
def test_prefix_length(mask: str | None, length: int | None) -> None:
    assert prefix_length(mask) == length


def test_read_machine_id_normalises_case(tmp_path: Path) -> None:
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc/machine-id").write_text("ABCDEF0123456789ABCDEF0123456789\n")
    assert read_machine_id(tmp_path) == "abcdef0123456789abcdef0123456789"
    (tmp_path / "etc/machine-id").write_text("0" * 32)
    with pytest.raises(Exception, match="valid machine id"):
        read_machine_id(tmp_path)


def test_this_machine(validate: Callable[[Any], Any]) -> None:
    ctx = CollectContext(run=_virt_runner(), fqdn_resolver=lambda _n: None)
    collected = collect_host(ctx)
    host = collected.data
    assert host["hostname"] == socket.gethostname()
    assert host["kernel"]["release"] == platform.release()
    assert host["architecture"] == platform.machine()
    assert host["memory"]["total_bytes"] == psutil.virtual_memory().total
    assert host["cpu"]["logical"] >= 1
    boot = datetime.strptime(host["boot_time"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    assert abs(boot.timestamp() - psutil.boot_time()) < 2
    names = {nic["name"] for nic in host["interfaces"]}
    assert names == set(psutil.net_if_addrs())
    loopbacks = [
        a for nic in host["interfaces"] for a in nic["addresses"] if a["address"] == "127.0.0.1"
    ]
    assert loopbacks == [{"family": "ipv4", "address": "127.0.0.1", "prefix_length": 8}]
    if Path("/etc/machine-id").exists() and os.access("/etc/machine-id", os.R_OK):
        assert host["machine_id"] == Path("/etc/machine-id").read_text().strip()
    if Path("/etc/os-release").exists():
        assert host["os"]["id"] in Path("/etc/os-release").read_text()
    validate(_envelope(host))
    assert isinstance(ctx.run, RecordedRunner)
    # The host domain's only external command: systemd-detect-virt.
    assert ctx.run.calls == [("systemd-detect-virt",)]
