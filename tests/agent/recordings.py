"""Recorded command outputs (tests/data/agent/commands) wired into `RecordedRunner`s.

`debian12_runner()` and `rocky9_runner()` answer every command the collectors run on
those fake hosts with what the real tools printed (see the data README for where
each recording comes from).
"""

from __future__ import annotations

from agent.collectors.logs import LIST_BOOTS
from agent.collectors.platforms.debian import APT_CONFIG, APT_LIST, DPKG_QUERY
from agent.collectors.platforms.rhel import RPM_QUERY
from agent.collectors.services import LIST_FILES, LIST_UNITS
from agent.runner import CommandResult
from tests.agent.conftest import DATA
from tests.agent.fakes import RecordedRunner

COMMANDS = DATA / "commands"
# Read once, at import: tests build runners inside `as_unprivileged` children, which run
# as `nobody` and cannot read a checkout in a directory other users cannot traverse.
_RECORDED = {path.name: path.read_text("utf-8") for path in COMMANDS.iterdir() if path.is_file()}


def recorded(name: str) -> str:
    return _RECORDED[name]


def result(
    argv: list[str] | tuple[str, ...], stdout: str, code: int = 0, stderr: str = ""
) -> tuple[tuple[str, ...], CommandResult]:
    return tuple(argv), CommandResult(tuple(argv), code, stdout, stderr)


def systemd_runs() -> list[tuple[tuple[str, ...], CommandResult]]:
    return [
        result(LIST_UNITS, recorded("systemctl-list-units.txt")),
        result(LIST_FILES, recorded("systemctl-list-unit-files.txt")),
        result(["timedatectl", "show"], recorded("timedatectl-show.txt")),
        result(LIST_BOOTS, recorded("journalctl-list-boots.remote-journal.json")),
    ]


def debian12_runner() -> RecordedRunner:
    return RecordedRunner(
        dict(
            [
                result(["systemd-detect-virt"], recorded("systemd-detect-virt.debian12.txt")),
                result(DPKG_QUERY, recorded("dpkg-query.debian12.txt")),
                result(
                    APT_LIST,
                    recorded("apt-list-upgradable.debian12.txt"),
                    stderr="WARNING: apt does not have a stable CLI interface.",
                ),
                result(APT_CONFIG, recorded("apt-config-dump.debian12.txt")),
                result(["/usr/sbin/sshd", "-T"], recorded("sshd-T.debian12.txt")),
                result(
                    ["nft", "-j", "list", "ruleset"], recorded("nft-j-list-ruleset.debian12.json")
                ),
                result(["iptables-save"], recorded("iptables-save.debian12.txt")),
                *systemd_runs(),
            ]
        )
    )


def rocky9_runner() -> RecordedRunner:
    return RecordedRunner(
        dict(
            [
                result(["systemd-detect-virt"], "kvm\n"),
                result(RPM_QUERY, recorded("rpm-qa.rocky9.txt")),
                result(
                    ["dnf", "-q", "-C", "check-update"],
                    recorded("dnf-check-update.rocky9.txt"),
                    100,
                ),
                result(
                    ["dnf", "-q", "-C", "updateinfo", "list", "--security"],
                    recorded("dnf-updateinfo-security.rocky9.txt"),
                ),
                result(
                    ["dnf", "-q", "-C", "history", "list"], recorded("dnf-history-list.rocky9.txt")
                ),
                result(["needs-restarting", "-r"], recorded("needs-restarting-r.rocky9.txt"), 1),
                *systemd_runs(),
            ]
        )
    )
