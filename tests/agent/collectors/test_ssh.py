"""The ssh collector: recorded `sshd -T`, the sshd_config fallback (Include, Match,
first value wins, algorithm modifiers) and the real sshd -T of this machine."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from agent.collectors.base import CollectContext, ErrorKind
from agent.collectors.ssh import collect_ssh, parse_sshd_t, sshd_seconds
from agent.runner import CommandResult
from tests.agent.conftest import ROOTS
from tests.agent.fakes import FakeSystem, RecordedRunner
from tests.agent.recordings import debian12_runner, recorded
from tests.support import require_root, require_tool


def test_recorded_sshd_t() -> None:
    collected = collect_ssh(CollectContext(root=ROOTS / "debian12", run=debian12_runner()))
    assert collected.issues == ()
    data = collected.data
    assert {k: v for k, v in data.items() if not isinstance(v, list)} == {
        "installed": True,
        "source": "sshd -T",
        "permit_root_login": "prohibit-password",  # sshd -T prints "without-password"
        "password_authentication": True,
        "pubkey_authentication": True,
        "permit_empty_passwords": False,
        "x11_forwarding": True,
        "max_auth_tries": 6,
        "client_alive_interval": 0,  # recorded: clientaliveinterval 0
        "client_alive_count_max": 3,
    }
    assert data["ports"] == [22]
    assert data["allow_users"] == data["allow_groups"] == data["deny_users"] == []
    raw = parse_sshd_t(recorded("sshd-T.debian12.txt"))
    assert data["ciphers"] == raw["ciphers"][0].split(",")
    assert data["kex_algorithms"][0] == "sntrup761x25519-sha512"
    assert "hmac-sha1" in data["macs"]


def _tree(tmp_path: Path, main: str, **dropins: str) -> Path:
    (tmp_path / "etc/ssh/sshd_config.d").mkdir(parents=True)
    (tmp_path / "etc/ssh/sshd_config").write_text(main)
    for name, text in dropins.items():
        (tmp_path / "etc/ssh/sshd_config.d" / name).write_text(text)
    return tmp_path


def test_config_fallback_include_match_and_first_value_wins(tmp_path: Path) -> None:
    root = _tree(
        tmp_path,
        "Include /etc/ssh/sshd_config.d/*.conf\n"
        "PermitRootLogin yes\n"  # the drop-in came first: its value wins
        "Port 22\nPort 2222\n"
        "PasswordAuthentication=yes\n"
        "Ciphers -*-cbc,chacha20-poly1305@openssh.com\n"
        "MACs +hmac-md5\n"
        "Match User backup\n"
        "    PasswordAuthentication yes\n"
        "    MaxAuthTries 10\n",
        **{
            "10-hardening.conf": "PermitRootLogin no\nMaxAuthTries 3\nPasswordAuthentication no\n",
            "20-later.conf": "PermitRootLogin yes\nX11Forwarding yes\n",
            "ignored.txt": "PubkeyAuthentication no\n",
        },
    )
    ctx = CollectContext(root=root, run=RecordedRunner(), system=FakeSystem())
    collected = collect_ssh(ctx)  # no sshd binary in the tree: the files are read
    data = collected.data
    assert data["source"] == "sshd_config"
    assert data["permit_root_login"] == "no"
    assert data["password_authentication"] is False
    assert data["pubkey_authentication"] is True
    assert data["x11_forwarding"] is True
    assert data["max_auth_tries"] == 3  # the Match block's 10 is not applied
    assert data["ports"] == [22, 2222]
    assert "chacha20-poly1305@openssh.com" not in data["ciphers"]
    assert data["ciphers"] == [
        "aes128-ctr",
        "aes192-ctr",
        "aes256-ctr",
        "aes128-gcm@openssh.com",
        "aes256-gcm@openssh.com",
    ]
    assert data["macs"][-1] == "hmac-md5"


def test_failed_sshd_t_falls_back_with_a_note(tmp_path: Path) -> None:
    root = _tree(tmp_path, "PermitRootLogin prohibit-password\n")
    (root / "usr/sbin").mkdir(parents=True)
    (root / "usr/sbin/sshd").write_text("")
    argv = ("/usr/sbin/sshd", "-T")
    runner = RecordedRunner(
        {argv: CommandResult(argv, 1, "", "sshd: no hostkeys available -- exiting.\n")}
    )
    collected = collect_ssh(CollectContext(root=root, run=runner, system=FakeSystem()))
    assert collected.data["source"] == "sshd_config"
    assert collected.data["permit_root_login"] == "prohibit-password"
    assert [i.kind for i in collected.issues] == [ErrorKind.FAILED]
    assert "no hostkeys available" in collected.issues[0].reason


def test_not_installed(tmp_path: Path) -> None:
    ctx = CollectContext(root=tmp_path, run=RecordedRunner(), system=FakeSystem())
    assert collect_ssh(ctx).data == {"installed": False}


def test_real_sshd_t_on_this_machine() -> None:
    sshd = require_tool("sshd")
    require_root()
    os.makedirs("/run/sshd", exist_ok=True)  # sshd -T insists on its privilege-separation dir
    data = collect_ssh(CollectContext()).data
    assert data["source"] == "sshd -T"
    real = subprocess.run([sshd, "-T"], capture_output=True, text=True, check=True).stdout
    values = parse_sshd_t(real)
    assert data["max_auth_tries"] == int(values["maxauthtries"][0])
    assert data["ciphers"] == values["ciphers"][0].split(",")
    assert data["ports"] == sorted({int(p) for p in values["port"]})


def test_include_loops_and_fan_out_end_quickly(tmp_path: Path) -> None:
    # Three drop-ins that each include the whole directory: without loop detection and
    # a file cap this is 3**16 reads; sshd itself refuses such a configuration.
    loop = "Include /etc/ssh/sshd_config.d/*.conf\n"
    root = _tree(
        tmp_path,
        loop + "PermitRootLogin no\nPort 22\n",
        **{"a.conf": loop + "MaxAuthTries 3\n", "b.conf": loop, "c.conf": loop},
    )
    ctx = CollectContext(root=root, run=RecordedRunner(), system=FakeSystem())
    collected = collect_ssh(ctx)
    assert collected.data["max_auth_tries"] == 3
    assert collected.data["permit_root_login"] == "no"
    reasons = [issue.reason for issue in collected.issues]
    assert any("Include loop" in reason for reason in reasons)
    assert len(reasons) < 300  # bounded, not one per path through the loop


def test_access_lists_and_idle_timeout_from_a_recorded_sshd_t(tmp_path: Path) -> None:
    """`sshd -T -f` on this machine's OpenSSH 9.2 with AllowUsers on two lines (see
    tests/data/agent/README.md): one entry per printed line, all kept."""
    (tmp_path / "usr/sbin").mkdir(parents=True)
    (tmp_path / "usr/sbin/sshd").write_bytes(b"")
    argv = ("/usr/sbin/sshd", "-T")
    runner = RecordedRunner({argv: CommandResult(argv, 0, recorded("sshd-T.allowlist.txt"), "")})
    data = collect_ssh(CollectContext(root=tmp_path, run=runner)).data
    assert data["allow_users"] == ["alice", "bob@10.0.0.0/8", "carol"]
    assert data["allow_groups"] == ["sshusers"]
    assert (data["deny_users"], data["deny_groups"]) == ([], [])
    assert (data["client_alive_interval"], data["client_alive_count_max"]) == (300, 0)


def test_config_fallback_accumulates_access_lists_and_reads_time_units(tmp_path: Path) -> None:
    root = _tree(
        tmp_path,
        "Include /etc/ssh/sshd_config.d/*.conf\nAllowUsers alice bob\nClientAliveInterval 5m\n",
        **{"10-more.conf": "AllowUsers carol\nDenyGroups nossh\nClientAliveInterval 60\n"},
    )
    data = collect_ssh(CollectContext(root=root, run=RecordedRunner())).data
    assert data["source"] == "sshd_config"
    assert data["allow_users"] == ["carol", "alice", "bob"]  # the drop-in is read first
    assert data["deny_groups"] == ["nossh"]
    assert data["client_alive_interval"] == 60  # first value obtained wins
    assert data["client_alive_count_max"] == 3  # OpenSSH's default


def test_sshd_time_format() -> None:
    assert sshd_seconds("1h30m") == 5400
    assert sshd_seconds("300") == 300
    assert sshd_seconds("5 minutes") is None
