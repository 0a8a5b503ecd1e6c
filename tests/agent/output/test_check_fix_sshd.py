"""The shipped sshd fixes, applied for real: each rule's command edits a copy of a
weak sshd configuration with the real GNU sed, the real `sshd -t` accepts the result,
and the real `sshd -T`, read by the agent's ssh collector, makes the rule pass where
it failed before. Only the reload (`systemctl reload ssh|sshd`) is not run: it would
act on this machine's own sshd."""

from __future__ import annotations

import shlex
import subprocess
from collections.abc import Sequence
from functools import cache
from pathlib import Path

import pytest

from agent.collectors.base import CollectContext
from agent.collectors.ssh import collect_ssh
from agent.runner import CommandResult, SubprocessRunner
from rules.engine import evaluate
from rules.language.loader import builtin_packs_dir, load_rules
from rules.language.model import OsFamily, Pack, Rule, RuleSet
from rules.results import Status
from tests.agent.fakes import FakeSystem
from tests.support import require_tool

SSHD_CONFIG = "/etc/ssh/sshd_config"
RELOAD = {OsFamily.DEBIAN: "systemctl reload ssh", OsFamily.RHEL: "systemctl reload sshd"}


@cache
def _ruleset() -> RuleSet:
    return load_rules([builtin_packs_dir()])


def _sshd_rules() -> list[Rule]:
    return [r for r in _ruleset().rules if any(SSHD_CONFIG in c for c in r.fix.values())]


class _ConfigRunner:
    """The real runner, with `sshd -T` pointed at the test's configuration."""

    def __init__(self, config: Path) -> None:
        self.config = config
        self.real = SubprocessRunner()

    def __call__(self, argv: Sequence[str], timeout: float) -> CommandResult:
        if list(argv[1:]) == ["-T"]:
            argv = [*argv, "-f", str(self.config)]
        return self.real(argv, timeout)


def _status(rule: Rule, config: Path) -> Status:
    ctx = CollectContext(
        root=Path("/"),
        run=_ConfigRunner(config),
        system=FakeSystem(),
        fqdn_resolver=lambda _n: None,
    )
    collected = collect_ssh(ctx)
    assert collected.issues == (), collected.issues  # read by sshd -T, not the fallback
    ruleset = RuleSet(packs=(Pack("one-rule", "1.0.0", rule.title, (rule,)),))
    (result,) = evaluate(ruleset, {"ssh": collected.data})
    return result.status


def _weak_config(tmp_path: Path) -> Path:
    keygen = require_tool("ssh-keygen")
    key = tmp_path / "host_ed25519"
    subprocess.run([keygen, "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    drop_ins = tmp_path / "sshd_config.d"
    drop_ins.mkdir()
    # What cloud images ship: a drop-in read before the main file's own lines.
    (drop_ins / "50-cloud-init.conf").write_text("PermitRootLogin yes\nX11Forwarding yes\n")
    config = tmp_path / "sshd_config"
    config.write_text(
        f"Include {drop_ins}/*.conf\n"
        f"HostKey {key}\n"
        "PermitEmptyPasswords yes\n"
        "MaxAuthTries 10\n"
        "ClientAliveInterval 0\n"
        "Ciphers aes128-cbc,aes256-ctr,aes128-gcm@openssh.com\n"
        "MACs hmac-sha1,hmac-md5,hmac-sha2-256\n"
        "KexAlgorithms diffie-hellman-group14-sha1,curve25519-sha256\n"
        "HostKeyAlgorithms ssh-rsa,ssh-ed25519\n"
        "Match User backup\n"
        "    X11Forwarding yes\n"
    )
    return config


@pytest.mark.parametrize("rule", _sshd_rules(), ids=lambda r: r.id)
@pytest.mark.parametrize("family", [OsFamily.DEBIAN, OsFamily.RHEL])
def test_the_sshd_fix_makes_the_rule_pass(tmp_path: Path, rule: Rule, family: OsFamily) -> None:
    sshd = require_tool("sshd")
    sed = require_tool("sed")
    command = rule.fix.get(family)
    if command is None:
        # RHEL's crypto rules: the system crypto policy decides, so no sshd_config line.
        assert family is OsFamily.RHEL and rule.id.startswith("SSH-WEAK-"), rule.id
        return
    config = _weak_config(tmp_path)
    assert _status(rule, config) is Status.FAIL
    edit, check, reload = command.split(" && ")
    argv = shlex.split(edit)
    assert argv[:2] == ["sed", "-i"] and argv[-1] == SSHD_CONFIG
    subprocess.run([sed, *argv[1:-1], str(config)], check=True)
    assert check == "sshd -t"
    subprocess.run([sshd, "-t", "-f", str(config)], check=True)
    assert reload == RELOAD[family]
    assert _status(rule, config) is Status.PASS
    # Running the fix a second time changes nothing that matters (first value wins).
    subprocess.run([sed, *argv[1:-1], str(config)], check=True)
    assert _status(rule, config) is Status.PASS


def test_the_sshd_rules_with_fixes() -> None:
    ids = {rule.id for rule in _sshd_rules()}
    assert {"SSH-ROOT-LOGIN", "SSH-IDLE-TIMEOUT", "SSH-WEAK-CIPHERS", "SSH-WEAK-KEX"} <= ids
    # Password login and access lists need keys or a group first: prose only.
    assert not ids & {"SSH-PASSWORD-AUTH", "SSH-NO-ACCESS-LIST"}
