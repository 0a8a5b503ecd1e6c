"""Rules whose inputs did not change are carried forward, with the results a full
evaluation gives: over a sequence of real agent documents (tests/data) with changes
in different domains, in the engine's answer and in everything the ingest stores
(rule results, findings lifecycle, scores); and a changed policy evaluates again."""

from __future__ import annotations

import copy
import dataclasses
import json
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from rules.engine.inputs import rule_inputs
from rules.language.model import Severity
from server.config import ServerConfig
from server.evaluation.carry import ResultCarry
from server.evaluation.loaded_policy import ServerPolicy, load_server_policy
from server.ingest.payload import decode_document
from server.ingest.service import IngestService, limits_of
from server.storage.database import Database
from server.storage.fact_store import split_facts
from server.storage.models import Finding, Host, RuleResultRow
from tests.server.helpers import body_of, iso, new_token, telnet

MACHINE = Path(__file__).parents[2] / "data" / "rules" / "engine_golden" / "machine.json"
START = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=6)
Change = Callable[[dict[str, Any]], None]


def certificate(days_left: int) -> dict[str, Any]:
    return {
        "location": "/etc/ssl/certs/site.pem",
        "source": "file",
        "path": "/etc/ssl/certs/site.pem",
        "chain_position": 0,
        "subject": "CN=site",
        "issuer": "CN=ca",
        "serial": "01",
        "not_before": iso(START - timedelta(days=300)),
        "not_after": iso(START + timedelta(days=200)),
        "days_left": days_left,
        "key_type": "RSA",
        "signature_algorithm": "sha256WithRSAEncryption",
        "self_signed": False,
        "is_ca": False,
        "fingerprint_sha256": "b" * 64,
    }


def _set(path: str, value: Any) -> Change:
    def change(facts: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node = facts
        for step in parents:
            node = node[step]
        node[last] = value

    return change


def _ssh_failed(facts: dict[str, Any]) -> None:
    facts.pop("ssh")
    facts["errors"].append({"domain": "ssh", "kind": "failed", "reason": "sshd -T timed out"})


def _package_upgraded(facts: dict[str, Any]) -> None:
    facts["packages"]["items"][0]["version"] += "+1"


def _nothing(facts: dict[str, Any]) -> None:
    del facts  # the same facts, sent again


def _ssh_back(facts: dict[str, Any]) -> None:
    facts["ssh"] = json.loads(MACHINE.read_text("utf-8"))["ssh"]
    facts["errors"] = [e for e in facts["errors"] if e["domain"] != "ssh"]


# Applied one after the other; each report is the previous one with one change.
STEPS: list[tuple[str, Change]] = [
    ("unchanged", _nothing),
    ("listening: telnet opened", lambda facts: facts["listening"].append(telnet())),
    ("ssh: root login allowed", _set("ssh.permit_root_login", "yes")),
    ("certificates: one added", _set("certificates", [certificate(150)])),
    # Only a derived age changes (the agent's clock moved): its stored content does not.
    ("certificates: expiring soon", _set("certificates", [certificate(5)])),
    ("ssh collector failed", _ssh_failed),
    ("packages: one upgraded", _package_upgraded),
    ("unchanged again", _nothing),
    ("listening: telnet closed", lambda facts: facts["listening"].pop()),
    ("ssh back", _ssh_back),
]


def machine() -> dict[str, Any]:
    facts: dict[str, Any] = json.loads(MACHINE.read_text("utf-8"))
    facts["certificates"] = []
    return facts


def reports(agent_id: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """The base document, then each step's, as consecutive reports of one agent."""
    facts = machine()
    for index, (name, change) in enumerate([("base", _nothing), *STEPS]):
        change(facts)
        document = copy.deepcopy(facts)
        document.update(
            agent_id=agent_id,
            report_id=str(uuid.uuid4()),
            seq=index + 1,
            collected_at=iso(START + timedelta(minutes=15 * index)),
        )
        yield name, document


@pytest.fixture(scope="module")
def shipped() -> ServerPolicy:
    """The shipped rule packs and frameworks (no vulnerability store: its rules error)."""
    return load_server_policy(ServerConfig())


def _rules_reading(policy: ServerPolicy, domain: str) -> set[str]:
    return {
        rule.id
        for rule in policy.ruleset.rules
        if (keys := rule_inputs(rule).keys) is None or domain in keys
    }


def test_carried_results_equal_full_evaluation_report_after_report(
    shipped: ServerPolicy,
) -> None:
    policy = dataclasses.replace(shipped, carry=ResultCarry())
    limits = limits_of(ServerConfig())
    total = len(policy.ruleset.rules)
    previous: dict[str, Any] = {}
    for name, facts in reports("agent-carry"):
        received = datetime.now(UTC)
        document = decode_document(body_of(facts), None, limits, received)
        split = split_facts(document.data, None, document.sent)
        digests = {d: (stored, split.sent.get(d)) for d, (_, stored) in split.domains.items()}
        evaluated_before, carried_before = policy.carry.evaluated, policy.carry.carried
        args = (document.data, "so-tttt", document.hostname, document.agent_id, received.date())
        carried = policy.evaluate(*args, digests=digests).results
        full = policy.evaluate(*args).results
        assert carried == full, name
        evaluated = policy.carry.evaluated - evaluated_before
        assert evaluated + policy.carry.carried - carried_before == total
        if name == "base":
            assert evaluated == total
        else:
            assert policy.carry.carried > carried_before, name  # something was carried
        if name == "listening: telnet opened":
            # Every rule reading `listening` was evaluated again (and not all rules).
            assert len(_rules_reading(policy, "listening")) <= evaluated < total
        by_rule = {r.rule_id: r for r in full}
        if name == "certificates: expiring soon":
            # A derived age alone changed a result: it was evaluated, not carried.
            assert previous["CERT-EXPIRY-SOON"].status.value == "pass"
            assert by_rule["CERT-EXPIRY-SOON"].status.value == "fail"
        previous = by_rule


def _state(database: Database, agent_id: str) -> dict[str, Any]:
    with database.session() as session:
        host = session.scalars(select(Host).where(Host.agent_id == agent_id)).one()
        findings = session.execute(
            select(
                Finding.rule_id,
                Finding.item_key,
                Finding.severity,
                Finding.status,
                Finding.first_seen,
                Finding.last_seen,
                Finding.resolved_at,
                Finding.reopened_count,
                Finding.evidence,
                Finding.message,
            )
            .where(Finding.host_id == host.id)
            .order_by(Finding.rule_id, Finding.item_key)
        ).all()
        results = session.execute(
            select(
                RuleResultRow.rule_id,
                RuleResultRow.status,
                RuleResultRow.items,
                RuleResultRow.errors,
                RuleResultRow.digest,
                RuleResultRow.until_pk.is_(None),
            )
            .where(RuleResultRow.host_id == host.id)
            .order_by(RuleResultRow.id)
        ).all()
        scores = (
            host.score_ratio,
            host.passed_count,
            host.failed_count,
            host.error_count,
            host.failing_high,
            host.failing_medium,
            host.policy_fingerprint,
        )
    return {
        "findings": [tuple(row) for row in findings],
        "results": [tuple(row) for row in results],
        "scores": scores,
    }


def test_ingest_stores_the_same_with_and_without_carrying(
    database: Database, shipped: ServerPolicy
) -> None:
    """Two agents send the same sequence: one through a service that carries results,
    one through a service whose carry remembers nothing (a full evaluation every
    time); everything stored for them is the same."""
    carrying = dataclasses.replace(shipped, carry=ResultCarry())
    full = dataclasses.replace(shipped, carry=ResultCarry(max_hosts=0))
    limits = limits_of(ServerConfig())
    services = {
        "agent-c": IngestService(database, carrying, limits),
        "agent-f": IngestService(database, full, limits),
    }
    tokens = {agent: new_token(database) for agent in services}
    sequences = {agent: list(reports(agent)) for agent in services}
    for step in range(len(STEPS) + 1):
        answers = []
        for agent, service in services.items():
            name, facts = sequences[agent][step]
            answer = service.ingest(service.authenticate(tokens[agent]), body_of(facts), None)
            answers.append((answer.score, answer.failing, answer.applied, answer.evaluated))
        assert answers[0] == answers[1], name
        assert _state(database, "agent-c") == _state(database, "agent-f"), name
    assert carrying.carry.carried > 0
    assert full.carry.carried == 0

    # A changed policy (here its score weights) evaluates every rule again, even for
    # facts that did not change, with nothing carried from the old policy.
    weights = {**ServerConfig().weights, Severity.HIGH: 7.0}
    changed = load_server_policy(ServerConfig(weights=weights))
    assert changed.fingerprint != shipped.fingerprint
    service = IngestService(database, changed, limits)
    name, facts = sequences["agent-c"][-1]
    facts = {**facts, "report_id": str(uuid.uuid4()), "seq": facts["seq"] + 1}
    answer = service.ingest(service.authenticate(tokens["agent-c"]), body_of(facts), None)
    assert answer.evaluated
    assert changed.carry.carried == 0
    assert changed.carry.evaluated == len(changed.ruleset.rules)
    assert _state(database, "agent-c")["scores"][-1] == changed.fingerprint
