"""The shipped sshd and login.defs fixes, applied for real. Each sshd rule's command
edits a copy of a weak sshd configuration with the real GNU sed, the real `sshd -t`
accepts the result, and the real `sshd -T`, read by the agent's ssh collector, makes
the rule pass where it failed before; the reload (`systemctl reload ssh|sshd`) is not
run, as it would act on this machine's own sshd. The login.defs fixes edit Debian
12's recorded file, read by the auth_policy collector."""

from __future__ import annotations

import shlex
import subprocess
from collections.abc import Sequence
from functools import cache
from pathlib import Path

import pytest

from agent.collectors.authpolicy import collect_auth_policy
from agent.collectors.base import CollectContext
from agent.collectors.ssh import collect_ssh
from agent.runner import CommandResult, SubprocessRunner
from rules.engine import evaluate
from rules.language.loader import builtin_packs_dir, load_rules
from rules.language.model import OsFamily, Pack, Rule, RuleSet
from rules.results import Status
from tests.agent.conftest import ROOTS
from tests.agent.fakes import FakeSystem, RecordedRunner
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


LOGIN_DEFS = "/etc/login.defs"
DEBIAN_LOGIN_DEFS = ROOTS / "debian12" / "etc" / "login.defs"


def _login_defs_status(rule: Rule, root: Path) -> Status:
    ctx = CollectContext(
        root=root, run=RecordedRunner(), system=FakeSystem(), fqdn_resolver=lambda _n: None
    )
    ruleset = RuleSet(packs=(Pack("one-rule", "1.0.0", rule.title, (rule,)),))
    (result,) = evaluate(ruleset, {"auth_policy": collect_auth_policy(ctx).data})
    return result.status


def test_the_login_defs_fixes_make_their_rules_pass(tmp_path: Path) -> None:
    """Debian 12's recorded login.defs, edited by each fix with the real GNU sed (the
    `echo ... >>` that follows is an append, done here without a shell), then read by
    the agent's auth_policy collector."""
    sed = require_tool("sed")
    rules = [r for r in _ruleset().rules if LOGIN_DEFS in r.fix.get(OsFamily.DEBIAN, "")]
    assert {r.id for r in rules} == {
        "LOGIN-DEFS-PASS-MAX-DAYS",
        "LOGIN-DEFS-PASS-MIN-DAYS",
        "LOGIN-DEFS-PASS-WARN-AGE",
        "UMASK-PERMISSIVE",
    }
    failed_before = 0
    for rule in rules:
        command = rule.fix[OsFamily.DEBIAN]
        assert command == rule.fix[OsFamily.RHEL]  # shadow-utils on both families
        root = tmp_path / rule.id
        (root / "etc").mkdir(parents=True)
        defs = root / "etc" / "login.defs"
        defs.write_bytes(DEBIAN_LOGIN_DEFS.read_bytes())
        failed_before += _login_defs_status(rule, root) is Status.FAIL
        for _ in range(2):  # twice: the second run leaves one line, as the first
            edit, append = command.split(" && ")
            argv = shlex.split(edit)
            assert argv[:2] == ["sed", "-i"] and argv[-1] == LOGIN_DEFS
            subprocess.run([sed, *argv[1:-1], str(defs)], check=True)
            echo, line, redirect, target = shlex.split(append)
            assert (echo, redirect, target) == ("echo", ">>", LOGIN_DEFS)
            with defs.open("a", encoding="utf-8") as out:
                out.write(line + "\n")
        key = line.split()[0]
        assert [x for x in defs.read_text().splitlines() if x.startswith(key)] == [line]
        assert _login_defs_status(rule, root) is Status.PASS, rule.id
    assert failed_before == 3  # PASS_WARN_AGE is already 7 on Debian 12
