"""`check` shows, under each failing rule, the fix command for this host's OS family:
the built-in packs over facts collected by the real collectors from the recorded
Debian 12, Rocky Linux 9 and Ubuntu 24.04 root trees, in both languages."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from agent.cli.main import main
from agent.collectors.base import CollectContext
from agent.document import collect_facts
from agent.output import check as check_output
from agent.output.check import Layout, Remedy, format_report, remediations
from agent.state.identity import Identity
from rules.engine import evaluate
from rules.language.loader import builtin_packs_dir, load_rules
from rules.language.model import RuleSet
from rules.results import RuleResult, Status
from tests.agent.conftest import ROOTS
from tests.agent.fakes import FakeSystem, RecordedRunner

RSYSLOG_DEBIAN = "apt-get install -y rsyslog && systemctl enable --now rsyslog"
RSYSLOG_RHEL = "dnf install -y rsyslog && systemctl enable --now rsyslog"


def _facts(root: str) -> dict[str, Any]:
    ctx = CollectContext(
        root=ROOTS / root,
        run=RecordedRunner(),
        system=FakeSystem(sockets=[], owners={}),
        fqdn_resolver=lambda _n: None,
    )
    return collect_facts(ctx, Identity("test-agent", 1))


@pytest.fixture(scope="module")
def ruleset() -> RuleSet:
    return load_rules([builtin_packs_dir()])


def _report(
    ruleset: RuleSet, facts: dict[str, Any], lang: str, width: int = 200
) -> tuple[list[RuleResult], dict[str, Remedy], list[str]]:
    results = evaluate(ruleset, facts)
    fixes = remediations(ruleset, facts)
    return results, fixes, format_report(results, fixes, lang, Layout(width=width))


def _block(lines: list[str], rule_id: str) -> list[str]:
    """The lines of one rule (blocks are separated by empty lines; at narrow widths
    the head wraps, so the rule id may be on its second line)."""
    blocks: list[list[str]] = [[]]
    for line in lines:
        if line:
            blocks[-1].append(line)
        else:
            blocks.append([])
    return next(b for b in blocks if b and f" {rule_id}:" in " ".join(b[:3]))


@pytest.mark.parametrize(
    ("root", "family", "command", "foreign"),
    [
        ("debian12", "debian", RSYSLOG_DEBIAN, RSYSLOG_RHEL),
        ("ubuntu2404", "debian", RSYSLOG_DEBIAN, RSYSLOG_RHEL),  # ID_LIKE=debian
        ("rocky9", "rhel", RSYSLOG_RHEL, RSYSLOG_DEBIAN),  # ID_LIKE="rhel centos fedora"
    ],
)
def test_the_fix_for_this_host_family_comes_before_the_remediation(
    ruleset: RuleSet, root: str, family: str, command: str, foreign: str
) -> None:
    facts = _facts(root)
    assert facts["host"]["os"]["family"] == family
    _, fixes, en = _report(ruleset, facts, "en")
    block = _block(en, "LOG-SYSLOG-ABSENT")
    assert block[0].startswith("[FAIL, low] LOG-SYSLOG-ABSENT:")
    here = block.index("    Fix on this host:")
    assert block[here + 1] == f"      {command}"
    assert block[here + 2].startswith("    Fix: Install and enable rsyslog")
    assert foreign not in "\n".join(en)
    _, _, vi = _report(ruleset, facts, "vi")
    block = _block(vi, "LOG-SYSLOG-ABSENT")
    here = block.index("    Lệnh khắc phục trên máy này:")
    assert block[here + 1] == f"      {command}"
    assert block[here + 2].startswith("    Khắc phục: Cài và bật rsyslog")
    assert fixes["LOG-SYSLOG-ABSENT"].command == command


def test_every_failing_rule_with_a_fix_for_the_family_shows_it_and_only_those(
    ruleset: RuleSet,
) -> None:
    for root in ("debian12", "rocky9"):
        results, fixes, en = _report(ruleset, _facts(root), "en", width=10_000)
        failing = [r for r in results if r.status is Status.FAIL]
        with_fix = [r for r in failing if fixes[r.rule_id].command is not None]
        assert len(with_fix) >= 8, root
        assert en.count("    Fix on this host:") == len(with_fix)
        for result in failing:
            block = _block(en, result.rule_id)
            command = fixes[result.rule_id].command
            if command is None:
                assert "    Fix on this host:" not in block
            else:
                assert f"      {command}" in block


def test_a_fix_written_for_one_family_only_is_not_shown_on_the_other(
    ruleset: RuleSet,
) -> None:
    """PAM-NO-LOCKOUT has a fix for RHEL (authselect) only: the Debian 12 host, where
    the rule fails, gets the remediation text alone."""
    _, fixes, en = _report(ruleset, _facts("debian12"), "en")
    block = _block(en, "PAM-NO-LOCKOUT")
    assert block[0].startswith("[FAIL")
    assert fixes["PAM-NO-LOCKOUT"].command is None
    assert not [line for line in block if "Fix on this host" in line]
    assert not [line for line in block if line.startswith("      authselect")]
    assert any(line.startswith("    Fix: Use `pam_faillock`") for line in block)


@pytest.mark.parametrize("family", [None, "other"])
def test_no_fix_command_when_the_family_is_unknown(ruleset: RuleSet, family: str | None) -> None:
    facts = _facts("debian12")
    if family is None:
        del facts["host"]["os"]["family"]
    else:
        facts["host"]["os"]["family"] = family
    results, fixes, en = _report(ruleset, facts, "en")
    assert any(r.status is Status.FAIL for r in results)
    assert all(remedy.command is None for remedy in fixes.values())
    assert "Fix on this host" not in "\n".join(en)
    assert "Fix: Install and enable rsyslog" in " ".join(" ".join(en).split())


@pytest.mark.parametrize("width", [40, 57, 80, 132])
@pytest.mark.parametrize("lang", ["vi", "en"])
def test_fix_lines_fit_the_width_and_paste_as_one_command(
    ruleset: RuleSet, width: int, lang: str
) -> None:
    pasted = broken = 0
    for root in ("debian12", "rocky9"):
        results, fixes, lines = _report(ruleset, _facts(root), lang, width)
        assert max(len(line) for line in lines) <= width
        for result in results:
            command = fixes[result.rule_id].command
            if result.status is not Status.FAIL or command is None:
                continue
            block = _block(lines, result.rule_id)
            start = block.index(f"    {check_output.label(lang, 'fix_here')}") + 1
            shown = []
            for line in block[start:]:
                assert line.startswith("      ")
                shown.append(line[6:])
                if not line.endswith(" \\"):
                    break
            words = check_output._shell_words(command)
            if max(len(w) for w in words) <= width - 8:  # no word cut (indent, " \\")
                # Joined back at the continuations, it is the command itself.
                assert " ".join(s.removesuffix(" \\") for s in shown) == command
                # Lines break between shell words only: never inside quotes.
                assert all(s.count("'") % 2 == 0 for s in shown), shown
                pasted += 1
                broken += len(shown) > 1
    assert pasted >= (10 if width >= 57 else 1)
    if width <= 80:
        assert broken > 0  # the continuation lines were really exercised


def test_every_shipped_fix_pastes_whole_at_80_columns(ruleset: RuleSet) -> None:
    for rule in ruleset.rules:
        for command in rule.fix.values():
            lines = check_output._command_lines(command, 80, "      ")
            assert all(len(line) <= 80 for line in lines)
            joined = " ".join(line[6:].removesuffix(" \\") for line in lines)
            assert joined == command, rule.id


def test_command_lines_break_between_shell_words() -> None:
    command = "printf '%s\\n' 'a b c d e f g h' \"x y z\" it\\ one >> /etc/x && run"
    assert check_output._shell_words(command) == [
        "printf",
        "'%s\\n'",
        "'a b c d e f g h'",
        '"x y z"',
        "it\\ one",
        ">>",
        "/etc/x",
        "&&",
        "run",
    ]
    assert check_output._command_lines(command, 40, "  ") == [
        "  printf '%s\\n' 'a b c d e f g h' \\",
        '  "x y z" it\\ one >> /etc/x && run',
    ]
    # A quoted word longer than a line (only at the narrowest widths) is broken at
    # its own spaces, never in the middle of a word that fits.
    long = "echo '-w /etc/sudoers.d/ -p wa -k scope -w /etc/passwd' > /etc/audit/x.rules"
    lines = check_output._command_lines(long, 40, "      ")
    assert lines == [
        "      echo \\",
        "      '-w /etc/sudoers.d/ -p wa -k \\",
        "      scope -w /etc/passwd' > \\",
        "      /etc/audit/x.rules",
    ]


def test_fix_commands_are_escaped_for_the_terminal(tmp_path: Path, ruleset: RuleSet) -> None:
    """A pack is data from a file: its command goes through `printable` like the rest."""
    pack = (builtin_packs_dir() / "hygiene.yaml").read_text(encoding="utf-8")
    assert RSYSLOG_DEBIAN in pack
    (tmp_path / "hygiene.yaml").write_text(
        pack.replace(RSYSLOG_DEBIAN, "apt-get install -y rsyslog\u202e"), encoding="utf-8"
    )
    custom = load_rules([tmp_path])
    _, _, en = _report(custom, _facts("debian12"), "en")
    block = _block(en, "LOG-SYSLOG-ABSENT")
    assert "      apt-get install -y rsyslog\\u202e" in block
    assert "\u202e" not in "\n".join(en)


@pytest.mark.parametrize(
    ("root", "command"), [("debian12", RSYSLOG_DEBIAN), ("rocky9", RSYSLOG_RHEL)]
)
def test_cli_check_shows_the_fix_for_the_facts_family(
    tmp_path: Path, root: str, command: str
) -> None:
    path = tmp_path / "facts.json"
    path.write_text(json.dumps(_facts(root)), encoding="utf-8")
    argv = ["check", "--facts", str(path)]
    en = CliRunner().invoke(main, [*argv, "--lang", "en"], env={"COLUMNS": "120"})
    assert en.exit_code == 1, en.output
    assert f"    Fix on this host:\n      {command}\n    Fix: " in en.stdout
    vi = CliRunner().invoke(main, argv, env={"COLUMNS": "120"})
    assert f"    Lệnh khắc phục trên máy này:\n      {command}\n    Khắc phục: " in vi.stdout
    assert "Fix" not in vi.stdout
