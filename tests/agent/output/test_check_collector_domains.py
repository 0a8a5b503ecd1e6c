"""The vulnerability rules on the agent: `check` has no feed store, so they cannot be
checked there; the report says they are judged on the collector, in both languages,
instead of blaming an "older agent"."""

from __future__ import annotations

import json
from pathlib import Path

from agent.output.check import Layout, format_report, remediations
from rules.engine import evaluate
from rules.language.loader import builtin_packs_dir, load_rules
from rules.results import Status

# Real collected facts of a Debian 12 machine (tests/data/server/vulns/README.md).
FACTS = Path(__file__).resolve().parents[2] / "data" / "server" / "vulns" / "facts.debian12.json"


def test_vulnerability_rules_say_they_are_judged_on_the_collector() -> None:
    facts = json.loads(FACTS.read_text("utf-8"))
    ruleset = load_rules([builtin_packs_dir() / "vulnerabilities.yaml"])
    results = evaluate(ruleset, facts)
    assert {r.status for r in results} == {Status.ERROR}
    en = "\n".join(format_report(results, remediations(ruleset), "en", Layout(width=300)))
    vi = "\n".join(format_report(results, remediations(ruleset), "vi", Layout(width=300)))
    assert "known vulnerabilities are judged on the collector" in en
    assert "lỗ hổng đã biết của các gói được đánh giá trên máy chủ thu thập" in vi
    for text in (en, vi):
        assert "older agent" not in text and "tác tử cũ hơn" not in text
    assert "vulnerabilities" not in vi  # no English word in the Vietnamese report
