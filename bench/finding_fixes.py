"""Benchmark: fix commands on `GET /api/v1/findings` (server/read/fixes.py).

A SQLite fleet of `--hosts` hosts is filled through the real ingest service with the
built-in packs, each report a copy of the facts the real agent collectors read from
the recorded Debian 12 or Rocky Linux 9 root tree (hostname and ids changed, so every
host's `host` domain is its own blob). Then, in the same run (medians of `--repeat`
rounds, the three works in turn), for a page of findings (the first `--limit`, and
one rule's: one finding per host):

- the work fixes add to the page as served (each rule's commands by family,
  `fixes`: in-memory lookups), beside the page's own query (`list_findings`, the
  baseline);
- the work the alternative not taken would add (each finding's command for its
  host's family: the `host` domain of every host on the page read with
  `fact_store.load_domains`), beside the same baseline.

    python bench/finding_fixes.py [--hosts 500] [--limit 1000] [--repeat 7]
"""

from __future__ import annotations

import argparse
import copy
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from figures import record
from sqlalchemy import select

from agent.collectors.base import CollectContext
from agent.document import collect_facts
from agent.state.identity import Identity
from rules.language.loader import builtin_packs_dir
from rules.language.model import os_family
from server.config import ServerConfig
from server.evaluation.loaded_policy import load_server_policy
from server.ingest.service import IngestService, limits_of
from server.read.fixes import FixMaps, fix_maps, with_fix_maps
from server.read.queries import Page, list_findings
from server.storage.database import Database, open_database
from server.storage.fact_store import load_domains
from server.storage.migrate import upgrade
from server.storage.models import Host
from tests.agent.conftest import ROOTS
from tests.agent.fakes import FakeSystem, RecordedRunner
from tests.server.helpers import body_of, new_token

RULE = "LOG-SYSLOG-ABSENT"  # fails on both recorded trees: one finding per host


def recorded(root: str) -> dict[str, Any]:
    ctx = CollectContext(
        root=ROOTS / root,
        run=RecordedRunner(),
        system=FakeSystem(sockets=[], owners={}),
        fqdn_resolver=lambda _n: None,
    )
    return collect_facts(ctx, Identity("bench", 1))


def page_of(database: Database, limit: int, rule: str | None) -> dict[str, Any]:
    with database.session() as session:
        return list_findings(session, datetime.now(UTC), Page(limit, 0), rule=rule)


def per_host(database: Database, page: dict[str, Any], fixes: FixMaps) -> dict[str, Any]:
    """The alternative's added work: each finding's command for its host's family."""
    with database.session() as session:
        agents = {f["agent_id"] for f in page["items"]}
        rows = select(Host.agent_id, Host.last_report_pk).where(Host.agent_id.in_(agents))
        latest = {agent: pk for agent, pk in session.execute(rows)}
        domains = load_domains(session, [pk for pk in latest.values() if pk], ["host"])
    family = {a: os_family(domains.get(pk or -1, {}).get("host")) for a, pk in latest.items()}
    for finding in page["items"]:
        found = family.get(finding["agent_id"])
        commands = fixes.get(finding["rule_id"], {})
        finding["fix"] = commands.get(found) if found is not None else None
    return page


def interleaved(works: list[Callable[[], object]], repeat: int) -> list[float]:
    """Median seconds of each work, run in turn (one warm-up round first) so that a
    busy shared machine slows them alike rather than whichever ran during a burst."""
    times: list[list[float]] = [[] for _ in works]
    for round_ in range(repeat + 1):
        for index, work in enumerate(works):
            started = time.perf_counter()
            work()
            if round_:
                times[index].append(time.perf_counter() - started)
    return [statistics.median(t) for t in times]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, default=500)
    parser.add_argument("--limit", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    trees = [recorded("debian12"), recorded("rocky9")]
    with tempfile.TemporaryDirectory() as directory:
        url = f"sqlite:///{directory}/bench.db"
        upgrade(url)
        database = open_database(url)
        config = ServerConfig(db_url=url, rules=(builtin_packs_dir(),), agent_rate_burst=10**9)
        policy = load_server_policy(config)
        service = IngestService(database, policy, limits_of(config))
        started = time.perf_counter()
        for index in range(args.hosts):
            facts = copy.deepcopy(trees[index % 2])
            facts["agent_id"] = f"agent-{index}"
            facts["report_id"] = str(uuid.uuid4())
            facts["host"]["hostname"] = f"srv-{index}"
            token = new_token(database, f"so-{index % 10}")
            service.ingest(service.authenticate(token), body_of(facts), None)
        print(f"seeded {args.hosts} hosts in {time.perf_counter() - started:.1f} s", flush=True)
        fixes = fix_maps(policy.ruleset)
        for rule, what in ((None, f"first {args.limit} findings"), (RULE, f"{RULE} findings")):
            page = page_of(database, args.limit, rule)
            base, shipped, alternative = interleaved(
                [
                    partial(page_of, database, args.limit, rule),
                    partial(with_fix_maps, page, fixes),
                    partial(per_host, database, page, fixes),
                ],
                args.repeat,
            )
            hosts = len({f["agent_id"] for f in page["items"]})
            label = f"GET /findings, {what} ({hosts} hosts)"
            own = "the page's own query"
            record(f"{label}: added by fixes by family (served)", shipped, "s",
                   baseline=base, baseline_name=own)  # fmt: skip
            record(f"{label}: added by a fix for each host's family (not taken)", alternative,
                   "s", baseline=base, baseline_name=own)  # fmt: skip
        database.dispose()


if __name__ == "__main__":
    main()
