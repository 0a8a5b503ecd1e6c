"""`check --format json`: each failing rule carries the fix command for this host's OS
family, from the built-in packs over facts the real collectors read from the
recorded Debian 12, Ubuntu 24.04 and Rocky Linux 9 root trees."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from agent.cli.main import main
from agent.collectors.base import CollectContext
from agent.document import collect_facts
from agent.state.identity import Identity
from rules.language.loader import builtin_packs_dir, load_rules
from rules.language.model import OsFamily
from tests.agent.conftest import ROOTS
from tests.agent.fakes import FakeSystem, RecordedRunner

RSYSLOG = {
    "debian": "apt-get install -y rsyslog && systemctl enable --now rsyslog",
    "rhel": "dnf install -y rsyslog && systemctl enable --now rsyslog",
}


def _facts_file(tmp_path: Path, root: str, family: str | None = None) -> Path:
    ctx = CollectContext(
        root=ROOTS / root,
        run=RecordedRunner(),
        system=FakeSystem(sockets=[], owners={}),
        fqdn_resolver=lambda _n: None,
    )
    document = collect_facts(ctx, Identity("test-agent", 1))
    if family is not None:
        document["host"]["os"]["family"] = family
    path = tmp_path / "facts.json"
    path.write_text(json.dumps(document))
    return path


def _check(facts: Path) -> dict[str, Any]:
    args = ["check", "--facts", str(facts), "--format", "json", "--fail-on", "critical"]
    result = CliRunner().invoke(main, args, catch_exceptions=False)
    assert result.exit_code in (0, 1, 3), result.output
    document: dict[str, Any] = json.loads(result.stdout)
    return document


@pytest.mark.parametrize(
    ("root", "family"), [("debian12", "debian"), ("ubuntu2404", "debian"), ("rocky9", "rhel")]
)
def test_each_failing_rule_carries_the_fix_for_this_host_family(
    tmp_path: Path, root: str, family: str
) -> None:
    document = _check(_facts_file(tmp_path, root))
    assert document["os_family"] == family
    by_id = {r["rule_id"]: r for r in document["results"]}
    assert by_id["LOG-SYSLOG-ABSENT"]["status"] == "fail"
    assert by_id["LOG-SYSLOG-ABSENT"]["fix"] == RSYSLOG[family]
    rules = {rule.id: rule for rule in load_rules([builtin_packs_dir()]).rules}
    failing = [r for r in document["results"] if r["status"] == "fail"]
    assert len(failing) > 1
    for result in failing:  # every failing rule: its own command for the family, or null
        assert result["fix"] == rules[result["rule_id"]].fix_for(OsFamily(family))
    # A failing rule without a command for the family says so with null, not absence.
    assert any(r["fix"] is None for r in failing)
    # Only failing rules carry a fix: a passing rule needs none.
    assert all("fix" not in r for r in document["results"] if r["status"] != "fail")


def test_unknown_family_gets_no_command_rather_than_a_wrong_one(tmp_path: Path) -> None:
    document = _check(_facts_file(tmp_path, "debian12", family="other"))
    assert document["os_family"] is None
    failing = [r for r in document["results"] if r["status"] == "fail"]
    assert failing and all(r["fix"] is None for r in failing)
