"""A rule's `fix`: one command per OS family. Good ones load typed; each kind of bad
one is a problem at its own file:line:col, all reported at once, also by `rules lint`."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from rules.errors import RuleLoadError
from rules.facts import load_schema
from rules.language.loader import load_rules
from rules.language.model import OsFamily, os_family
from rules.tooling.cli import rules_group

HEAD = """\
pack: {id: fixes, version: 1.0.0, title: {vi: Thử, en: Test}}
rules:
  - id: FIX-ONE
    title: {vi: Thử, en: Test}
    severity: low
    rationale: {vi: Thử, en: Test}
    remediation: {vi: Thử, en: Test}
    check: {path: host.hostname, op: exists}
    message: {vi: Thử, en: Test}
"""


def _write(tmp_path: Path, fix: str) -> Path:
    path = tmp_path / "fixes.yaml"
    path.write_text(HEAD + fix, encoding="utf-8")
    return path


def test_a_fix_per_family_loads_typed_and_is_chosen_by_the_host_family(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "    fix:\n"
        '      debian: "  systemctl enable --now cron  "\n'
        "      rhel: systemctl enable --now crond\n",
    )
    rule = load_rules([path]).rules[0]
    assert rule.fix == {
        OsFamily.DEBIAN: "systemctl enable --now cron",
        OsFamily.RHEL: ("systemctl enable --now crond"),
    }
    assert rule.fix_for(os_family({"os": {"id": "ubuntu", "family": "debian"}})) == (
        "systemctl enable --now cron"
    )
    assert rule.fix_for(os_family({"os": {"id": "rocky", "family": "rhel"}})) == (
        "systemctl enable --now crond"
    )
    # A family the rule has no command for, `other`, or facts that do not say: no fix.
    assert rule.fix_for(OsFamily.SUSE) is None
    assert os_family({"os": {"id": "gentoo", "family": "other"}}) is None
    assert os_family({"os": {"id": "debian"}}) is None
    assert os_family(None) is None
    assert rule.fix_for(None) is None


def test_a_rule_without_fix_has_none(tmp_path: Path) -> None:
    rule = load_rules([_write(tmp_path, "")]).rules[0]
    assert rule.fix == {}
    assert rule.fix_for(OsFamily.DEBIAN) is None


def test_every_bad_fix_is_located_and_reported_at_once(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "    fix:\n"  # line 10
        "      ubuntu: apt-get upgrade\n"  # 11: an os-release ID, not a family
        '      debian: "  "\n'  # 12
        "      rhel: [dnf, upgrade]\n"  # 13
        "      suse: 3\n"  # 14
        "      arch:\n"  # 15: null
        "      alpine: |\n"  # 16: two lines
        "        apk update\n"
        "        apk upgrade\n",
    )
    with pytest.raises(RuleLoadError) as caught:
        load_rules([path])
    problems = [str(p) for p in caught.value.problems]
    file = str(path)
    assert problems == [
        f"{file}:11:7: unknown OS family 'ubuntu' in 'fix' "
        "(families: debian, rhel, suse, arch, alpine)",
        f"{file}:12:15: 'fix.debian' must be a non-empty command",
        f"{file}:13:13: 'fix.rhel' must be a command (a string), got ['dnf', 'upgrade']",
        f"{file}:14:13: 'fix.suse' must be a command (a string), got 3",
        f"{file}:15:12: 'fix.arch' must be a command (a string), got None",
        f"{file}:16:15: 'fix.alpine' must be one line without control characters "
        "(join commands with &&)",
    ]


def test_placeholders_length_and_shape(tmp_path: Path) -> None:
    long = "echo " + "x" * 400
    path = _write(
        tmp_path,
        f"    fix:\n      debian: passwd -l <account>\n      rhel: {long}\n",
    )
    with pytest.raises(RuleLoadError) as caught:
        load_rules([path])
    first, second = (str(p) for p in caught.value.problems)
    assert first.endswith(
        ":11:15: 'fix.debian' has the placeholder '<account>': a fix runs as shown "
        "(explain what to fill in in 'remediation' instead)"
    )
    assert second.endswith(":12:13: 'fix.rhel' is 405 characters long (at most 400)")
    for shape, where in (("[apt-get upgrade]", ":10:10:"), ("{}", ":10:10:")):
        with pytest.raises(RuleLoadError) as caught:
            load_rules([_write(tmp_path, f"    fix: {shape}\n")])
        (problem,) = (str(p) for p in caught.value.problems)
        assert where + " 'fix' must be a mapping of OS family to command" in problem
    # A redirection is a command, not a placeholder.
    fine = _write(tmp_path, "    fix: {debian: \"echo 'a = 1' >> /etc/a.conf 2>/dev/null\"}\n")
    assert load_rules([fine]).rules[0].fix_for(OsFamily.DEBIAN) == (
        "echo 'a = 1' >> /etc/a.conf 2>/dev/null"
    )


def test_rules_lint_reports_fix_problems(tmp_path: Path) -> None:
    path = _write(tmp_path, "    fix: {centos: yum update}\n")
    done = CliRunner().invoke(rules_group, ["lint", "--rules", str(path)])
    assert done.exit_code == 1
    assert f"{path}:10:11: unknown OS family 'centos' in 'fix'" in done.stderr
    assert "1 problem found" in done.stderr


def test_fix_families_are_the_families_the_facts_report() -> None:
    """`host.os.family` is defined once, in the facts schema; `other` has no tools."""
    schema = load_schema()
    enum = schema["$defs"]["host"]["properties"]["os"]["properties"]["family"]["enum"]
    assert [f.value for f in OsFamily] == [f for f in enum if f != "other"]
