"""Bug fixture (issue 13): with neither nft nor iptables installed, the firewall is
unknown (the kernel may hold rules), never `active: false`.

The recorded runner has no recording for either tool: that is how a missing program
looks to the collectors (CommandNotFound), the same path as on a host without them.
The document builder turns the failure into an `errors` entry, and the shipped
firewall rules are then in error with that reason.
"""

from __future__ import annotations

from pathlib import Path

from agent.collectors.base import CollectContext
from agent.collectors.firewall import collect_firewall
from agent.document import collect_facts
from agent.runner import CommandResult
from agent.state.identity import Identity
from rules.engine import evaluate_rule
from rules.facts import Domain
from rules.language.loader import builtin_packs_dir, load_rules
from rules.results import Status
from tests.agent.certs import NOW
from tests.agent.fakes import FakeSystem, RecordedRunner
from tests.agent.recordings import recorded


def _ctx(root: Path, runner: RecordedRunner) -> CollectContext:
    return CollectContext(root=root, run=runner, system=FakeSystem(), now=lambda: NOW)


def test_no_kernel_tool_makes_the_firewall_unknown_and_its_rules_errors(tmp_path: Path) -> None:
    ctx = _ctx(tmp_path, RecordedRunner())
    document = collect_facts(ctx, Identity("t", 1), domains=[Domain.FIREWALL], now=lambda: NOW)
    assert "firewall" not in document
    (entry,) = document["errors"]
    assert entry["domain"] == "firewall"
    assert entry["kind"] == "unsupported"
    assert "whether it filters is unknown" in entry["reason"]
    assert "nftables:" in entry["reason"] and "iptables:" in entry["reason"]
    rule = load_rules([builtin_packs_dir()]).get("FW-NOT-ACTIVE")
    assert rule is not None
    result = evaluate_rule(rule, document)
    assert result.status is Status.ERROR
    assert "whether it filters is unknown" in result.errors[0]


def test_an_active_front_end_is_known_without_the_kernel_tools(tmp_path: Path) -> None:
    (tmp_path / "etc/ufw").mkdir(parents=True)
    (tmp_path / "etc/ufw/ufw.conf").write_text("ENABLED=yes\n")
    data = collect_firewall(_ctx(tmp_path, RecordedRunner())).data
    assert (data["active"], data["backend"]) == (True, "ufw")


def test_one_readable_table_without_rules_is_a_known_inactive_firewall(tmp_path: Path) -> None:
    argv = ("nft", "-j", "list", "ruleset")
    empty = '{"nftables": [{"metainfo": {"version": "1.0.6", "json_schema_version": 1}}]}'
    runner = RecordedRunner({argv: CommandResult(argv, 0, empty, "")})
    data = collect_firewall(_ctx(tmp_path, runner)).data
    assert (data["active"], data["backend"]) == (False, None)
    # and the recorded Debian 12 ruleset alone is read as active
    full = RecordedRunner(
        {argv: CommandResult(argv, 0, recorded("nft-j-list-ruleset.debian12.json"), "")}
    )
    assert collect_firewall(_ctx(tmp_path, full)).data["backend"] == "nftables"
