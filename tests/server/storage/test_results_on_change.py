"""Rule results stored only when they change (revision 0006), on SQLite and PostgreSQL.

Two hosts in two agencies send the same ten reports with the shipped rules, one
listener changing at every report. Host A is stored as the collector stores it; host
B is forced to store the whole set at every evaluation (the write path's own `full`
switch, so B is exactly what a full-store collector keeps). A stores rows only for
the rules that read `listening` and whose outcome changed, and every read answer
(host detail, findings, agency scores, audit) for A is the one for B.
"""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from server.config import ServerConfig
from server.evaluation.loaded_policy import ServerPolicy, load_server_policy
from server.ingest.service import IngestService, limits_of
from server.read.audit import AuditPolicy, build_audit
from server.read.queries import Page, agencies_ranked, host_detail, list_findings
from server.storage import report_store
from server.storage.database import Database
from server.storage.models import Host, Report, RuleResultRow
from server.storage.retention import prune
from server.storage.rule_results import outcome_digest, write_results
from tests.server.helpers import body_of, make_facts, new_token, telnet

REPORTS = 10
_SKIP = {"report_id", "rank"}
START = datetime(2026, 11, 30, 1, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def shipped() -> ServerPolicy:
    return load_server_policy(ServerConfig())


def listening(index: int) -> list[dict[str, Any]]:
    """One listener that changes at every report (port; telnet every third)."""
    return [telnet(port=23)] if index % 3 == 0 else [telnet("127.0.0.1", 8000 + index)]


def run(database: Database, policy: ServerPolicy, monkeypatch: pytest.MonkeyPatch) -> None:
    service = IngestService(database, policy, limits_of(ServerConfig()))
    tokens = {
        "agent-a": new_token(database, "agency-a"),
        "agent-b": new_token(database, "agency-b"),
    }

    def full_for_b(*args: Any, chain: bool, full: bool = False) -> int:
        session, host_id = args[0], args[1]
        agent = session.scalar(select(Host.agent_id).where(Host.id == host_id))
        return write_results(*args, chain=chain, full=full or agent == "agent-b")

    monkeypatch.setattr(report_store, "write_results", full_for_b)
    for index in range(REPORTS):
        at = START + timedelta(minutes=15 * index)
        for agent, token in tokens.items():
            facts = make_facts(
                agent_id=agent, seq=index + 1, collected_at=at, listening=listening(index)
            )
            result = service.ingest(service.authenticate(token), body_of(facts), None)
            assert result.evaluated


def rows_by_report(database: Database, agent: str) -> list[dict[str, str]]:
    """[{rule_id: digest}] of the rows stored at each report of `agent`, in order."""
    with database.session() as session:
        reports = list(
            session.scalars(
                select(Report.id).join(Host).where(Host.agent_id == agent).order_by(Report.seq)
            )
        )
        stored: dict[int, dict[str, str]] = defaultdict(dict)
        for row in session.scalars(
            select(RuleResultRow).where(RuleResultRow.report_pk.in_(reports))
        ):
            stored[row.report_pk][row.rule_id] = outcome_digest(
                row.severity, row.status, row.items, row.errors
            )
    return [stored[pk] for pk in reports]


def normalised(value: Any) -> Any:
    """JSON of a read answer with B's names as A's; what differs by construction left
    out: arrival times, random report ids, the agencies' rank (a tie broken by name)."""
    text = json.dumps(value, sort_keys=True, default=str)
    data = json.loads(text.replace("agency-b", "agency-a").replace("agent-b", "agent-a"))

    def strip(node: Any) -> Any:
        if isinstance(node, dict):
            return {k: strip(v) for k, v in node.items() if "received" not in k and k not in _SKIP}
        if isinstance(node, list):
            return [strip(v) for v in node]
        return node

    return strip(data)


def answers(database: Database, policy: ServerPolicy, agent: str, agency: str) -> Any:
    now = START + timedelta(days=1)
    with database.session() as session:
        detail = host_detail(session, agent, now - timedelta(days=2))
        findings = list_findings(session, now, Page(limit=1000), agent_id=agent)
        scores = [
            {k: v for k, v in entry.items() if k not in ("rank", "name")}
            for entry in agencies_ranked(session, policy.weights, now - timedelta(days=2))
            if entry.get("agency") == agency or entry.get("agency_id") == agency
        ]
        audit = build_audit(
            session,
            AuditPolicy.of(policy.policy, policy.fingerprint, policy.weights),
            as_of=now,
            agency=agency,
            stale_after_seconds=86400 * 7,
        )
    assert detail is not None and scores
    return normalised(
        {
            "detail": detail,
            "findings": findings,
            "scores": scores,
            "audit": audit.model_dump(mode="json"),
        }
    )


def test_changed_rules_only_and_identical_answers(
    database: Database, shipped: ServerPolicy, monkeypatch: pytest.MonkeyPatch
) -> None:
    run(database, shipped, monkeypatch)
    stored_a = rows_by_report(database, "agent-a")
    full_b = rows_by_report(database, "agent-b")
    rules = {rule.id for rule in shipped.ruleset.rules}
    readers = {
        rule.id
        for rule in shipped.ruleset.rules
        if "listening" in repr(rule.check) + repr(rule.applies_to)
    }
    assert all(set(report) == rules for report in full_b)  # B: the whole set each time
    assert set(stored_a[0]) == rules  # the first evaluation stores every rule
    changed_total = 0
    for index in range(1, REPORTS):
        changed = {
            rule for rule, digest in full_b[index].items() if full_b[index - 1][rule] != digest
        }
        assert stored_a[index] == {rule: full_b[index][rule] for rule in changed}
        assert changed <= readers, changed - readers
        changed_total += len(changed)
    assert 0 < changed_total < (REPORTS - 1) * len(readers) + 1
    assert answers(database, shipped, "agent-a", "agency-a") == answers(
        database, shipped, "agent-b", "agency-b"
    )
    # Retention moves rows still in effect forward instead of deleting them.
    before = answers(database, shipped, "agent-a", "agency-a")
    pruned = prune(database, START + timedelta(days=40), 30)
    assert pruned.reports > 0
    after = answers(database, shipped, "agent-a", "agency-a")
    for kept in (before, after):
        del kept["detail"]["score_history"]  # the pruned reports' scores are gone
    assert after == before
