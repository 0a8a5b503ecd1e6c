"""The engine gives exactly the results it gave before it was made faster.

`tests/data/rules/engine_golden/results.json.gz` was written ONCE by the engine as it
was before rule expressions were compiled into closures (commit 13fea98, by running
`python tests/rules/test_engine_golden.py`), over the built-in policy and fixtures of
that day (copied into `packs/` and `fixtures/` beside it, so later edits of the packs
do not move this test) and a set of varied real documents: this machine's
`canhgac-agent collect --no-state` output (`machine.json`), the same document scaled
to a busy server, the same document with each domain removed in turn (with and
without the agent's `errors` entry for it), and every fixture case's document with
its parameters. Every result is compared whole: status, items (keys, evidence,
messages in both languages), errors, severity and title (the last two against the
rule's own).

Regenerate only when a change of results is intended, and say so in the commit.
Regenerated once since, when messages began writing RFC 3339 times as each language
writes a time: the comparison of old and new showed 17 items' messages changed, each
only in its times, keys and evidence untouched.
"""

from __future__ import annotations

import copy
import gzip
import json
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from rules.engine import evaluate, evaluate_rule
from rules.language.loader import load_rules
from rules.language.model import RuleSet
from rules.tooling.fixtures import load_fixtures

DATA = Path(__file__).resolve().parents[1] / "data" / "rules" / "engine_golden"
GOLDEN = DATA / "results.json.gz"

Case = tuple[str, dict[str, Any], dict[str, dict[str, Any]]]


def _grow(items: list[Any], count: int, rename: Callable[[dict[str, Any], int], None]) -> list[Any]:
    grown = []
    for index in range(count if items else 0):
        item = copy.deepcopy(items[index % len(items)])
        rename(item, index)
        grown.append(item)
    return grown


def _busy(document: dict[str, Any]) -> dict[str, Any]:
    """The bench's busy server, frozen here: the golden results were recorded from
    exactly this input, so a later change to bench/rules_eval.py must not move it."""
    busy = copy.deepcopy(document)
    packages = busy.get("packages") or {}
    if packages.get("items"):
        packages["items"] = _grow(
            packages["items"], 1500, lambda p, i: p.update(name=f"{p['name']}-{i}")
        )
    busy["listening"] = _grow(
        busy.get("listening") or [], 60, lambda s, i: s.update(port=10000 + i)
    )
    if isinstance(busy.get("certificates"), list):
        busy["certificates"] = _grow(
            busy["certificates"], 20, lambda c, i: c.update(location=f"/etc/ssl/c{i}.pem#0")
        )
    return busy


def cases() -> Iterator[Case]:
    machine = json.loads((DATA / "machine.json").read_text(encoding="utf-8"))
    yield "machine", machine, {}
    yield "busy server", _busy(machine), {}
    envelope = {"schema", "report_id", "agent_id", "seq", "collected_at", "agent_version"}
    for domain in sorted(set(machine) - envelope - {"errors"}):
        without = {k: v for k, v in machine.items() if k != domain}
        yield f"machine without {domain}", without, {}
        reported = dict(without)
        reported["errors"] = [
            {"domain": domain, "kind": "failed", "reason": f"{domain} could not be read"}
        ]
        yield f"machine without {domain}, reported", reported, {}
    for case in load_fixtures([DATA / "fixtures"]):
        params = {case.rule_id: dict(case.params)} if case.params else {}
        # named relative to the data folder: the recording must not depend on where
        # the checkout is
        source = case.source.removeprefix(f"{DATA}/")
        yield f"fixture {source} {case.name}", case.document(), params


def _plain(value: Any) -> Any:
    return json.loads(json.dumps(value, ensure_ascii=False))


def results_of(ruleset: RuleSet, document: dict[str, Any], params: Any) -> list[Any]:
    """Every result whole, but title and severity compared here with the rule's (they
    are the rule's constants; stored 23,000 times they would be most of the file)."""
    results = []
    for rule, result in zip(ruleset.rules, evaluate(ruleset, document, params), strict=True):
        assert (result.rule_id, result.title, result.severity) == (
            rule.id,
            rule.title,
            rule.severity,
        )
        data = _plain(result.to_dict())
        del data["title"], data["severity"]
        results.append(data)
    return results


def _ruleset() -> RuleSet:
    return load_rules([DATA / "packs"])


def write_golden() -> None:
    ruleset = _ruleset()
    golden = {name: results_of(ruleset, doc, params) for name, doc, params in cases()}
    text = json.dumps(golden, ensure_ascii=False, sort_keys=True, indent=0)
    GOLDEN.write_bytes(gzip.compress(text.encode("utf-8"), mtime=0))


@pytest.fixture(scope="module")
def golden() -> dict[str, list[Any]]:
    data: dict[str, list[Any]] = json.loads(gzip.decompress(GOLDEN.read_bytes()))
    return data


def test_every_result_is_the_previous_engines(golden: dict[str, list[Any]]) -> None:
    ruleset = _ruleset()
    seen = set()
    for name, document, params in cases():
        seen.add(name)
        assert name in golden, f"case {name!r} has no recorded results"
        got = results_of(ruleset, document, params)
        for expected, actual in zip(golden[name], got, strict=True):
            assert actual == expected, f"{name}: rule {expected['rule_id']}"
    assert seen == set(golden)


def test_the_cases_cover_every_status_and_items(golden: dict[str, list[Any]]) -> None:
    # Otherwise the comparison above could pass by comparing little.
    statuses = {r["status"] for results in golden.values() for r in results}
    assert statuses >= {"pass", "fail", "error", "not_applicable"}
    items = sum(len(r["items"]) for results in golden.values() for r in results)
    assert items > 1000


def test_one_rule_evaluated_twice_gives_the_same_result() -> None:
    # A compiled rule is reused: a second evaluation must not see the first's state.
    ruleset = _ruleset()
    machine = json.loads((DATA / "machine.json").read_text(encoding="utf-8"))
    for rule in ruleset.rules:
        first = _plain(evaluate_rule(rule, machine).to_dict())
        assert _plain(evaluate_rule(rule, machine).to_dict()) == first


if __name__ == "__main__":
    if sys.argv[1:] != ["--write"]:
        sys.exit("usage: test_engine_golden.py --write  (records the CURRENT engine's results)")
    write_golden()
