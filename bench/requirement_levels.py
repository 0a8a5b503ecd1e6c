"""Benchmark: what judging requirements at each host's security level costs the metrics.

`canhgac_framework_requirement_ratio` counts, per agency and requirement, only the
hosts of the requirement's levels (server/metrics/results.py keeps a second count per
(agency, level) for hosts of a known level; server/metrics/aggregates.py subtracts
the other levels). Measured on a synthetic fleet (HOSTS hosts in 50 agencies, every
shipped rule with a result on every host, the shipped TCVN 11930:2017 file of 128
requirements, agencies spread over levels 1-5), medians of --repeat runs, each figure
beside its baseline measured in the same run: the same work with no level declared
(what the metrics did before levels were applied).

- refresh: every host's results indexed (the first refresh after a start);
- render: the aggregates and requirement ratios rendered after a change (a scrape
  after a refresh moved something: cached until the next change);
- re-level: a changed scopes file moving every host to its level (once per reload).

The rows come from a synthetic loader: the database read is not in these figures.

    python bench/requirement_levels.py [--hosts 10000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from figures import median_seconds, record  # noqa: E402

from rules.language.loader import builtin_packs_dir  # noqa: E402
from rules.policy.bundle import load_policy  # noqa: E402
from rules.policy.frameworks import SECURITY_LEVEL_GROUP, builtin_frameworks_dir  # noqa: E402
from rules.policy.scopes import HostGroup, Scopes, Selector  # noqa: E402
from rules.policy.scoring import DEFAULT_WEIGHTS  # noqa: E402
from server.metrics.aggregates import render_requirement_ratios, requirement_ratios  # noqa: E402
from server.metrics.hoststate import HostSnapshot  # noqa: E402
from server.metrics.results import ResultsIndex, Row  # noqa: E402
from server.storage.database import Database  # noqa: E402

AGENCIES = 50
NOW = datetime(2026, 11, 30, tzinfo=UTC)
STATUSES = ("pass", "pass", "pass", "fail", "error", "not_applicable")


def level_scopes() -> Scopes:
    """Agency i at level i % 5 + 1: every level holds ten agencies."""
    groups = {}
    for level in range(1, 6):
        members = tuple(
            Selector(agency=f"so-{a:02d}") for a in range(AGENCIES) if a % 5 + 1 == level
        )
        group_id = SECURITY_LEVEL_GROUP.format(level)
        groups[group_id] = HostGroup(group_id, None, members)
    return Scopes(groups=groups)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    policy = load_policy([builtin_packs_dir()], frameworks=[builtin_frameworks_dir()])
    frameworks = [f for f in policy.frameworks if f.id == "tcvn-11930-2017"]
    rules = policy.ruleset.rules
    severities = {rule.id: rule.severity for rule in rules}
    rows_of = {
        pk: [
            (rule.id, rule.severity.value, STATUSES[(pk + i) % len(STATUSES)])
            for i, rule in enumerate(rules)
        ]
        for pk in range(len(STATUSES))
    }

    def loader(_db: Database, pks: Sequence[int]) -> Mapping[int, list[Row]]:
        return {pk: rows_of[pk % len(STATUSES)] for pk in pks}

    snapshots = [
        HostSnapshot(
            agent_id=f"agent-{i}",
            agency_id=f"so-{i % AGENCIES:02d}",
            hostname=f"host-{i}",
            label=f"host-{i}",
            os_pretty_name=None,
            agent_version="1",
            last_seq=1,
            last_collected_at=NOW,
            last_received_at=NOW,
            score_ratio=None,
            error_count=0,
            failing={},
            results_report_pk=i,
        )
        for i in range(args.hosts)
    ]
    database = Database.__new__(Database)  # never used: the loader is synthetic
    scopes = level_scopes()
    print(f"{args.hosts} hosts, {len(rules)} rules, {AGENCIES} agencies, 128 requirements")

    def indexed(chosen: Scopes | None) -> ResultsIndex:
        index = ResultsIndex(loader)
        index.set_scopes(chosen)
        index.update(database, snapshots)
        return index

    plain_refresh = median_seconds(lambda: indexed(None), args.repeat)
    level_refresh = median_seconds(lambda: indexed(scopes), args.repeat)
    record(
        f"refresh, {args.hosts} hosts, levels declared",
        level_refresh,
        "s",
        baseline=plain_refresh,
        baseline_name="no level declared",
    )

    def render(index: ResultsIndex) -> str:
        aggregate = index.aggregate()
        return render_requirement_ratios(
            requirement_ratios(aggregate, frameworks, severities, DEFAULT_WEIGHTS)
        )

    plain, levelled = indexed(None), indexed(scopes)
    plain_render = median_seconds(lambda: render(plain), args.repeat)
    level_render = median_seconds(lambda: render(levelled), args.repeat)
    record(
        f"render requirement ratios, {AGENCIES} agencies, levels declared",
        level_render,
        "s",
        baseline=plain_render,
        baseline_name="no level declared",
    )
    series = (render(plain).count("\n") - 2, render(levelled).count("\n") - 2)
    print(f"requirement ratio series: {series[0]} without levels, {series[1]} with")

    def relevel() -> None:
        plain.set_scopes(scopes)
        plain.set_scopes(None)

    record(
        f"re-level {args.hosts} hosts (a scopes reload), there and back",
        median_seconds(relevel, args.repeat),
        "s",
        baseline=plain_refresh,
        baseline_name="a first refresh",
    )


if __name__ == "__main__":
    main()
