"""accounts, services, firewall, time, logging, malware_protection and the new host and
listening fields, against the Debian 12 fake root and recorded outputs."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import pytest

from agent.collectors.accounts import collect_accounts
from agent.collectors.base import CollectContext, CollectorError, ErrorKind
from agent.collectors.firewall import collect_firewall, parse_iptables_save, parse_nft_json
from agent.collectors.host import collect_host
from agent.collectors.listening import collect_listening, systemd_unit
from agent.collectors.logs import collect_logging, time_span_seconds
from agent.collectors.malware import collect_malware_protection
from agent.collectors.services import collect_services
from agent.collectors.system import ProcessOwner
from agent.collectors.timesync import collect_time
from agent.document import collect_facts
from agent.runner import CommandResult
from agent.state.identity import Identity
from rules.facts import Domain
from tests.agent.certs import NOW
from tests.agent.conftest import ROOTS
from tests.agent.fakes import FakeSystem, RecordedRunner, tcp
from tests.agent.privileges import as_unprivileged
from tests.agent.recordings import debian12_runner, recorded

DEBIAN = ROOTS / "debian12"


def _ctx(root: Path = DEBIAN, **kw: Any) -> CollectContext:
    return CollectContext(
        root=root,
        run=kw.pop("run", debian12_runner()),
        system=kw.pop("system", FakeSystem()),
        now=lambda: NOW,
        **kw,
    )


def _built(root: Path, domain: Domain) -> dict[str, Any]:
    """The facts document of `domain` as the agent builds it, collected at NOW."""
    ctx = _ctx(root, fqdn_resolver=lambda _n: None)
    return collect_facts(ctx, Identity("t", 1), domains=[domain], now=lambda: NOW)


def test_accounts() -> None:
    collected = collect_accounts(_ctx())
    assert collected.issues == ()
    data = collected.data
    users = {u["name"]: u for u in data["users"]}
    assert data["shadow_readable"] is True
    assert data["uid0"] == ["root", "toor"]
    assert users["admin"] == {
        "name": "admin",
        "uid": 1000,
        "gid": 1000,
        "home": "/home/admin",
        "shell": "/bin/bash",
        "login_shell": True,
        "password": "set",
        "password_max_days": 90,
    }
    assert (users["toor"]["password"], users["toor"]["login_shell"]) == ("empty", True)
    assert users["ops"]["password"] == "locked"  # "!" before the hash
    assert users["ops"]["login_shell"] is True  # an empty shell is /bin/sh
    assert users["ops"]["password_max_days"] is None
    assert (users["sync"]["login_shell"], users["daemon"]["password"]) == (False, "locked")
    assert data["nopasswd_sudo"] == [
        {
            "source": "/etc/sudoers.d/ops:2",
            "principal": "ops",
            "commands": "/usr/bin/systemctl restart nginx,      /usr/bin/systemctl reload nginx",
            "all_commands": False,
        },
        {
            "source": "/etc/sudoers.d/ops:4",
            "principal": "%deploy",
            "commands": "ALL",
            "all_commands": True,
        },
    ]  # old.bak has a '.' in its name: sudo skips it, and so does the agent


def test_accounts_as_an_ordinary_user() -> None:
    root = Path(tempfile.mkdtemp(prefix="canhgac-accounts-", dir="/tmp"))
    try:
        os.chmod(root, 0o755)
        shutil.copytree(DEBIAN / "etc", root / "etc", symlinks=True)
        os.chmod(root / "etc/shadow", 0o600)
        os.chmod(root / "etc/sudoers", 0o440)

        def run() -> Any:
            collected = collect_accounts(_ctx(root, run=RecordedRunner()))
            return [collected.data, [[i.kind.value, i.reason] for i in collected.issues]]

        data, issues = as_unprivileged(run)
    finally:
        shutil.rmtree(root)
    if os.geteuid() != 0:
        pytest.skip("needs root to make files another user cannot read")
    assert data["shadow_readable"] is False
    assert {u["password"] for u in data["users"]} == {"unknown"}
    assert data["uid0"] == ["root", "toor"]
    assert [kind for kind, _ in issues] == ["permission", "permission"]
    assert "/etc/sudoers" in issues[1][1]


def test_services() -> None:
    data = collect_services(_ctx()).data
    units = {u["name"]: u for u in data["units"]}
    assert data["manager"] == "systemd"
    assert len(units) == 10
    assert units["vsftpd.service"] == {
        "name": "vsftpd.service",
        "load_state": "loaded",
        "active_state": "failed",
        "sub_state": "failed",
        "unit_file_state": "enabled",
        "description": "vsftpd FTP server",
    }
    assert units["telnet.socket"]["unit_file_state"] == "disabled"


def test_services_without_systemd(tmp_path: Path) -> None:
    collected = collect_services(_ctx(tmp_path))
    assert collected.data == {"manager": None, "units": []}
    assert [i.kind for i in collected.issues] == [ErrorKind.UNSUPPORTED]


def test_firewall_from_recorded_nft_and_iptables() -> None:
    data = collect_firewall(_ctx()).data
    assert data == {
        "active": True,
        "backend": "nftables",
        "default_input_policy": "drop",
        "rule_count": 5,
        "backends": [
            {"name": "nftables", "active": True, "default_input_policy": "drop", "rule_count": 5},
            {"name": "iptables", "active": True, "default_input_policy": "drop", "rule_count": 3},
        ],
    }
    assert parse_nft_json('{"nftables": [{"metainfo": {}}]}') == {
        "active": False,
        "default_input_policy": None,
        "rule_count": 0,
    }
    assert parse_iptables_save(recorded("iptables-save.debian12.txt"))["rule_count"] == 3


def test_ufw_is_the_backend_when_enabled(tmp_path: Path) -> None:
    (tmp_path / "etc/ufw").mkdir(parents=True)
    (tmp_path / "etc/default").mkdir(parents=True)
    (tmp_path / "etc/ufw/ufw.conf").write_text("# /etc/ufw/ufw.conf\nENABLED=yes\nLOGLEVEL=low\n")
    (tmp_path / "etc/default/ufw").write_text('IPV6=yes\nDEFAULT_INPUT_POLICY="DROP"\n')
    (tmp_path / "etc/ufw/user.rules").write_text(
        "*filter\n-A ufw-user-input -p tcp --dport 22 -j ACCEPT\n"
        "-A ufw-user-input -p tcp --dport 443 -j ACCEPT\nCOMMIT\n"
    )
    data = collect_firewall(_ctx(tmp_path)).data
    assert (data["backend"], data["default_input_policy"], data["rule_count"]) == ("ufw", "drop", 2)
    assert [b["name"] for b in data["backends"]] == ["nftables", "iptables", "ufw"]


def test_firewall_tools_need_root() -> None:
    argv = ("nft", "-j", "list", "ruleset")
    runner = RecordedRunner(
        {argv: CommandResult(argv, 1, "", "Error: Operation not permitted (you must be root)\n")}
    )
    # nft denied, iptables-save not installed: no table was read, so "no firewall" is
    # not known; the domain fails with both reasons (it used to say active: false)
    with pytest.raises(CollectorError) as raised:
        collect_firewall(_ctx(Path("/nonexistent"), run=runner))
    assert raised.value.kind is ErrorKind.PERMISSION
    assert "nftables: nft -j list ruleset exited with 1" in raised.value.reason
    assert "iptables: iptables-save is not installed" in raised.value.reason


def test_time() -> None:
    data = collect_time(_ctx()).data
    assert data == {
        "synchronized": True,
        "ntp_service": None,
        "ntp_active": True,
        "timezone": "Asia/Ho_Chi_Minh",
    }


def test_time_finds_the_running_daemon(tmp_path: Path) -> None:
    (tmp_path / "proc/812").mkdir(parents=True)
    (tmp_path / "proc/812/comm").write_text("chronyd\n")
    collected = collect_time(_ctx(tmp_path))
    assert collected.data["ntp_service"] == "chrony" and collected.data["ntp_active"] is True
    assert collected.data["synchronized"] is None  # no systemd to ask
    assert [i.kind for i in collected.issues] == [ErrorKind.UNSUPPORTED]


def test_logging() -> None:
    assert collect_logging(_ctx()).data == {
        "journald": {
            "storage": "persistent",
            "persistent": True,
            "running": True,
            "system_max_use": "2G",
            "max_retention_sec": 6 * 2629800,
            # journalctl --list-boots recorded over a journal written here (data README)
            "oldest_entry_at": "2024-10-27T03:33:20Z",
            "retained_days": 761.2,
        },
        "syslog": {"daemon": "rsyslog", "running": False},
        "rotation": {
            "file": "/var/log/syslog",
            "rotate": 4,
            "period": "weekly",
            "retention_days": 28,
        },
    }


@pytest.mark.parametrize(
    ("span", "seconds"),
    [
        ("3600", 3600),
        ("1d", 86400),
        ("2w 3d", 17 * 86400),
        ("1month", 2629800),
        ("5 parsecs", None),
    ],
)
def test_time_spans(span: str, seconds: int | None) -> None:
    assert time_span_seconds(span) == seconds


def test_malware_protection(tmp_path: Path) -> None:
    shutil.copytree(DEBIAN, tmp_path, dirs_exist_ok=True, symlinks=True)
    daily = tmp_path / "var/lib/clamav/daily.cld"
    stamp = (NOW - dt.timedelta(days=3)).timestamp()
    os.utime(daily, (stamp, stamp))
    (tmp_path / "proc/900").mkdir()
    (tmp_path / "proc/900/comm").write_text("clamd\n")
    collected = collect_malware_protection(_ctx(tmp_path))
    assert collected.issues == ()
    assert collected.data == {
        "any_installed": True,
        "any_running": True,
        "products": [
            {
                "name": "ClamAV",
                "installed": True,
                "running": True,
                "version": None,
                "signature_updated_at": "2026-11-24T08:00:00Z",
            }
        ],
    }
    # The age is the document's, derived from signature_updated_at as of collected_at.
    document = _built(tmp_path, Domain.MALWARE_PROTECTION)
    assert document["malware_protection"]["products"][0]["signature_age_days"] == 3.0


def test_a_wazuh_agent_is_no_antivirus(tmp_path: Path) -> None:
    """Wazuh is a HIDS and file integrity monitor: installed and running, it leaves
    the host without malware protection (AV-NOT-RUNNING fails, not passes)."""
    (tmp_path / "var/ossec/bin").mkdir(parents=True)
    (tmp_path / "var/ossec/bin/wazuh-agentd").write_text("")
    (tmp_path / "proc/812").mkdir(parents=True)
    (tmp_path / "proc/812/comm").write_text("wazuh-agentd\n")
    collected = collect_malware_protection(_ctx(tmp_path))
    assert collected.issues == ()
    assert collected.data == {"any_installed": False, "any_running": False, "products": []}
    # ClamAV beside it is still found: only Wazuh is not counted.
    (tmp_path / "usr/sbin").mkdir(parents=True)
    (tmp_path / "usr/sbin/clamd").write_text("")
    again = collect_malware_protection(_ctx(tmp_path))
    assert [p["name"] for p in again.data["products"]] == ["ClamAV"]
    assert again.data["any_installed"] is True and again.data["any_running"] is False
    empty = collect_malware_protection(_ctx(Path("/nonexistent"))).data
    assert empty == {"any_installed": False, "any_running": False, "products": []}


def test_host_inventory() -> None:
    system = FakeSystem(usage={"/": (100, 60, 30), "/srv/backup data": (10, 1, 9)})
    data = collect_host(_ctx(system=system, fqdn_resolver=lambda _n: None)).data
    assert data["virtualization"] == "docker"  # the recorded systemd-detect-virt
    # The collector reports when the host booted (btime); the document derives the uptime.
    assert data["boot_time"] == "2026-11-13T01:03:53Z"
    assert "uptime_seconds" not in data
    assert _built(DEBIAN, Domain.HOST)["host"]["uptime_seconds"] == 1234567
    assert data["timezone"] == "Asia/Ho_Chi_Minh"
    mounts = {f["mountpoint"]: f for f in data["filesystems"]}
    assert list(mounts) == ["/", "/run", "/boot/efi", "/dev/shm", "/srv/backup data"]
    assert mounts["/"] == {
        "device": "/dev/vda1",
        "mountpoint": "/",
        "fstype": "ext4",
        "total_bytes": 100,
        "used_bytes": 60,
        "free_bytes": 30,
        "used_ratio": round(60 / 90, 4),
        "options": ["rw", "relatime", "errors=remount-ro"],
    }
    assert mounts["/dev/shm"]["total_bytes"] is None and mounts["/dev/shm"]["used_ratio"] is None
    assert "noexec" not in mounts["/dev/shm"]["options"]
    assert data["disks"] == [
        {"name": "vda", "size_bytes": 41943040 * 512, "rotational": True, "model": "QEMU HARDDISK"}
    ]


def test_listening_executable_and_unit(tmp_path: Path) -> None:
    (tmp_path / "proc/10").mkdir(parents=True)
    (tmp_path / "proc/10/cgroup").write_text("0::/system.slice/nginx.service\n")
    (tmp_path / "proc/11").mkdir(parents=True)
    (tmp_path / "proc/11/cgroup").write_text(
        "12:memory:/user.slice\n1:name=systemd:/system.slice/ssh.service\n"
    )
    owners = {10: ProcessOwner("nginx", "root", "/usr/sbin/nginx")}
    system = FakeSystem(sockets=[tcp("0.0.0.0", 80, 10), tcp("0.0.0.0", 22, 11)], owners=owners)
    listeners = collect_listening(_ctx(tmp_path, system=system)).data
    by_port = {e["port"]: e for e in listeners}
    assert (by_port[80]["executable"], by_port[80]["unit"]) == ("/usr/sbin/nginx", "nginx.service")
    assert (by_port[22]["executable"], by_port[22]["unit"]) == (None, "ssh.service")
    assert systemd_unit(_ctx(tmp_path), 99) is None
