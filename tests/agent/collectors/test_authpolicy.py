"""The auth_policy collector: login.defs and the PAM password stack, on the Debian 12
files recorded from the machine these tests were written on, on those files with
pam_pwquality and pam_faillock added (the lines `pam-auth-update` writes), and on a
RHEL-family system-auth."""

from __future__ import annotations

import shutil
from pathlib import Path

from agent.collectors.authpolicy import collect_auth_policy, parse_pam
from agent.collectors.base import CollectContext, ErrorKind
from tests.agent.certs import NOW
from tests.agent.conftest import ROOTS
from tests.agent.fakes import FakeSystem, RecordedRunner


def _ctx(root: Path) -> CollectContext:
    return CollectContext(root=root, run=RecordedRunner(), system=FakeSystem(), now=lambda: NOW)


def test_recorded_debian12_defaults() -> None:
    collected = collect_auth_policy(_ctx(ROOTS / "debian12"))
    assert collected.issues == ()
    assert collected.data == {
        "login_defs": {
            "present": True,
            "pass_max_days": 99999,
            "pass_min_days": 0,
            "pass_warn_age": 7,
            "encrypt_method": "sha512",
            "umask": "022",
        },
        "pam": {
            "stack": "debian",
            "password_hash": "yescrypt",  # pam_unix's option wins over ENCRYPT_METHOD
            "remember": None,
            "quality_module": None,
            "min_length": None,
            "min_classes": None,
            "lockout_module": None,
            "lockout_deny": None,
            "lockout_unlock_seconds": None,
        },
    }


def test_pwquality_and_faillock_added(tmp_path: Path) -> None:
    shutil.copytree(ROOTS / "debian12/etc", tmp_path / "etc", symlinks=True)
    pam = tmp_path / "etc/pam.d"
    password = (pam / "common-password").read_text()
    (pam / "common-password").write_text(
        password.replace(
            "password\t[success=1 default=ignore]\tpam_unix.so obscure yescrypt",
            "password\trequisite\t\t\tpam_pwquality.so retry=3 minclass=3\n"
            "password\t[success=1 default=ignore]\tpam_unix.so obscure use_authtok "
            "try_first_pass yescrypt remember=5",
        )
    )
    auth = (pam / "common-auth").read_text()
    (pam / "common-auth").write_text(
        "auth\trequisite\t\t\tpam_faillock.so preauth\n"
        + auth.replace(
            "auth\trequisite\t\t\tpam_deny.so",
            "auth\t[default=die]\t\t\tpam_faillock.so authfail deny=5\nauth\trequisite\t\t\tpam_deny.so",
        )
    )
    (tmp_path / "etc/security/pwquality.conf").write_text("# minimum length\nminlen = 14\n")
    data = collect_auth_policy(_ctx(tmp_path)).data["pam"]
    assert (data["quality_module"], data["min_length"], data["min_classes"]) == (
        "pam_pwquality",
        14,
        3,
    )
    assert data["remember"] == 5
    # deny from the authfail line's argument, unlock_time faillock's default (the
    # recorded faillock.conf is all comments)
    assert (data["lockout_module"], data["lockout_deny"], data["lockout_unlock_seconds"]) == (
        "pam_faillock",
        5,
        600,
    )


def test_rhel_system_auth_and_hash_from_login_defs(tmp_path: Path) -> None:
    (tmp_path / "etc/pam.d").mkdir(parents=True)
    (tmp_path / "etc/login.defs").write_text("PASS_MAX_DAYS 60\nENCRYPT_METHOD SHA512\nUMASK 027\n")
    (tmp_path / "etc/pam.d/system-auth").write_text(
        "auth        required      pam_env.so\n"
        "auth        required      pam_faillock.so preauth silent\n"
        "auth        sufficient    pam_unix.so\n"
        "password    requisite     pam_pwquality.so local_users_only\n"
        "password    sufficient    pam_unix.so shadow use_authtok\n"
    )
    data = collect_auth_policy(_ctx(tmp_path)).data
    assert data["login_defs"]["pass_max_days"] == 60
    assert data["login_defs"]["umask"] == "027"
    pam = data["pam"]
    assert pam["stack"] == "rhel"
    assert pam["password_hash"] == "sha512"  # no pam_unix option: ENCRYPT_METHOD
    assert (pam["min_length"], pam["lockout_deny"]) == (8, 3)  # the modules' defaults


def test_no_pam_stack_is_unknown_with_a_reason(tmp_path: Path) -> None:
    collected = collect_auth_policy(_ctx(tmp_path))
    assert collected.data["pam"] is None
    assert collected.data["login_defs"]["present"] is False
    assert collected.data["login_defs"]["pass_max_days"] == 99999  # shadow's default
    assert [i.kind for i in collected.issues] == [ErrorKind.UNSUPPORTED]


def test_tab_separated_login_defs_values_are_read_not_defaulted(tmp_path: Path) -> None:
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc/login.defs").write_text(
        "PASS_MAX_DAYS\t90\nPASS_MIN_DAYS\t\t1\nPASS_WARN_AGE 14\n"
    )
    data = collect_auth_policy(_ctx(tmp_path)).data["login_defs"]
    assert (data["pass_max_days"], data["pass_min_days"], data["pass_warn_age"]) == (90, 1, 14)
    assert (data["encrypt_method"], data["umask"]) == (None, "022")  # login.defs(5) default


def test_pam_lines() -> None:
    assert parse_pam("-session optional pam_systemd.so\n@include common-auth\n") == [
        ("session", "optional", "pam_systemd.so", [])
    ]
