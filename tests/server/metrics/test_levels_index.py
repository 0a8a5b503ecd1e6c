"""The results index's per-(agency, level) counts follow a host that moves: to another
agency, to another name (host selectors are globs over the hostname), or out of the
fleet. The rows come from an in-memory loader (the index's seam; the database read is
covered by test_results.py and tests/server/read/test_security_levels.py)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime

from rules.policy.scopes import HostGroup, Scopes, Selector
from rules.results import Status
from server.metrics.hoststate import HostSnapshot
from server.metrics.results import ResultsIndex, Row
from server.storage.database import Database

NOW = datetime(2026, 11, 30, tzinfo=UTC)
ROWS: dict[int, list[Row]] = {1: [("TEST-TELNET", "critical", "fail")]}
# Level 3: every host of so-a whose name starts with "web"; nothing else has a level.
SCOPES = Scopes(
    groups={
        "security-level-3": HostGroup(
            "security-level-3", None, (Selector(agency="so-a", host="web*"),)
        )
    }
)


def loader(_database: Database, pks: Sequence[int]) -> Mapping[int, list[Row]]:
    return {pk: ROWS[pk] for pk in pks}


WEB = HostSnapshot(
    agent_id="agent-web",
    agency_id="so-a",
    hostname="web01",
    label="web01",
    os_pretty_name=None,
    agent_version="1",
    last_seq=1,
    last_collected_at=NOW,
    last_received_at=NOW,
    score_ratio=0.0,
    error_count=0,
    failing={},
    results_report_pk=1,
)
FAIL = ("TEST-TELNET", Status.FAIL)


def test_level_counts_follow_moves_renames_and_departures() -> None:
    database = Database.__new__(Database)  # never used: the loader is in memory
    index = ResultsIndex(loader)
    index.set_scopes(SCOPES)
    index.update(database, [WEB])
    assert index.aggregate().by_level == {"so-a": {3: {FAIL: 1}}}
    # Renamed: the same results, no longer matched by web*: no level any more.
    renamed = replace(WEB, hostname="db01", label="db01")
    index.update(database, [renamed])
    aggregate = index.aggregate()
    assert aggregate.by_level == {} and aggregate.counts == {"so-a": {FAIL: 1}}
    index.update(database, [WEB])
    assert index.aggregate().by_level == {"so-a": {3: {FAIL: 1}}}
    # Moved to another agency: its counts go with it, the level (so-a's only) does not.
    index.update(database, [replace(WEB, agency_id="so-b")])
    aggregate = index.aggregate()
    assert aggregate.counts == {"so-b": {FAIL: 1}} and aggregate.by_level == {}
    index.update(database, [WEB])
    index.update(database, [])  # gone
    assert index.aggregate().counts == {} and index.aggregate().by_level == {}


def test_scopes_without_a_level_group_count_nothing_twice() -> None:
    index = ResultsIndex(loader)
    index.set_scopes(Scopes(groups={"web": HostGroup("web", None, (Selector(host="web*"),))}))
    index.update(Database.__new__(Database), [WEB])
    assert index.aggregate().by_level == {}
    version = index.version
    index.set_scopes(SCOPES)  # a reload that declares the level moves the host
    assert index.aggregate().by_level == {"so-a": {3: {FAIL: 1}}}
    assert index.version == version + 1
    index.set_scopes(SCOPES)  # the same scopes again: nothing to do
    assert index.version == version + 1
