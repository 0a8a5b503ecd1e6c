"""The shipped rules against this machine's real facts: no `error` where the facts exist.

An `error` is acceptable only when its domain is missing from the document or its
collector reported a problem in `errors` (for example a tool this machine lacks);
anything else means a rule reads a path the agent does not produce, or compares
values of the wrong kind.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from rules.derived import add_derived, parse_timestamp, strip_derived
from rules.engine import evaluate
from rules.language.loader import builtin_packs_dir, load_rules
from rules.results import Status

BIN = Path(sys.executable).parent


def test_shipped_rules_evaluate_real_facts_without_unexplained_errors(tmp_path: Path) -> None:
    facts_file = tmp_path / "facts.json"
    subprocess.run(
        [
            str(BIN / "canhgac-agent"),
            "collect",
            "--output",
            str(facts_file),
            "--state-dir",
            str(tmp_path),
        ],
        check=True,
        timeout=300,
    )
    facts = json.loads(facts_file.read_text())
    troubled = {entry["domain"] for entry in facts["errors"]}
    results = evaluate(load_rules([builtin_packs_dir()]), facts)
    assert results
    unexplained = []
    for result in results:
        if result.status is not Status.ERROR:
            continue
        explained = any(
            domain in troubled or domain not in facts
            for error in result.errors
            for domain in _domains_named(error)
        )
        if not explained:
            unexplained.append((result.rule_id, result.errors))
    assert unexplained == []


def _domains_named(error: str) -> set[str]:
    # "fact path 'ssh.ciphers' is missing ..." -> {"ssh"}
    names = set()
    for part in error.split("'")[1::2]:
        names.add(part.removeprefix("$.").split(".", 1)[0])
    return names


def test_stripped_real_facts_rebuild_exactly(tmp_path: Path) -> None:
    """What the collector stores (no ages) plus `collected_at` gives back the agent's facts."""
    out = subprocess.run(
        [str(BIN / "canhgac-agent"), "collect", "--no-state"],
        check=True,
        capture_output=True,
        text=True,
        timeout=300,
    ).stdout
    facts = json.loads(out)
    collected_at = parse_timestamp(facts["collected_at"])
    assert collected_at is not None
    assert add_derived(strip_derived(facts), collected_at) == facts
