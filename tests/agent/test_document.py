"""The facts document: envelope, domains, and failures turned into `errors` entries."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from agent import __version__
from agent.collectors.base import CollectContext, Collected, CollectorError, ErrorKind, Issue
from agent.collectors.registry import COLLECTORS, budget_of
from agent.document import DEFAULT_BUDGET_SECONDS, collect_facts, run_collectors
from agent.state.identity import Identity
from rules.facts import SCHEMA_ID, Domain
from tests.agent.conftest import ROOTS
from tests.agent.fakes import FakeSystem, tcp
from tests.agent.privileges import as_unprivileged
from tests.agent.recordings import debian12_runner
from tests.support import require_root

IDENTITY = Identity(agent_id="test-agent", seq=7)


def _ctx() -> CollectContext:
    return CollectContext(
        root=ROOTS / "debian12",
        run=debian12_runner(),
        system=FakeSystem(sockets=[tcp("0.0.0.0", 22, 1)]),
        fqdn_resolver=lambda _n: None,
    )


def test_full_document_from_the_registry(validate: Callable[[Any], Any]) -> None:
    fixed = datetime(2026, 11, 27, 8, 0, 0, tzinfo=UTC)
    document = collect_facts(_ctx(), IDENTITY, now=lambda: fixed)
    validate(document)
    assert list(document)[:6] == [
        "schema",
        "report_id",
        "agent_id",
        "seq",
        "collected_at",
        "agent_version",
    ]
    assert document["schema"] == SCHEMA_ID
    assert uuid.UUID(document["report_id"]).version == 4
    assert (document["agent_id"], document["seq"]) == ("test-agent", 7)
    assert document["collected_at"] == "2026-11-27T08:00:00Z"
    assert document["agent_version"] == __version__
    assert set(document) - {
        "schema",
        "report_id",
        "agent_id",
        "seq",
        "collected_at",
        "agent_version",
        "errors",
    } == {d.value for d in COLLECTORS}
    assert document["host"]["hostname"] == "debian-web-01"
    assert document["listening"][0]["port"] == 22
    assert document["errors"] == []


def test_report_ids_differ_between_collections() -> None:
    ids = {collect_facts(_ctx(), IDENTITY)["report_id"] for _ in range(3)}
    assert len(ids) == 3


def test_raising_collectors_become_errors_entries(validate: Callable[[Any], Any]) -> None:
    def broken(_ctx: CollectContext) -> Collected:
        raise ZeroDivisionError("division by zero")

    def unsupported(_ctx: CollectContext) -> Collected:
        raise CollectorError(ErrorKind.UNSUPPORTED, "no such thing on this OS")

    registry = {
        Domain.HOST: COLLECTORS[Domain.HOST],
        Domain.LISTENING: broken,
        Domain.FIREWALL: unsupported,
    }
    document = collect_facts(_ctx(), IDENTITY, registry=registry)
    validate(document)
    assert "host" in document
    assert "listening" not in document and "firewall" not in document
    assert document["errors"] == [
        {"domain": "listening", "kind": "failed", "reason": "ZeroDivisionError: division by zero"},
        {"domain": "firewall", "kind": "unsupported", "reason": "no such thing on this OS"},
    ]


def test_slow_collector_times_out_and_the_rest_is_delivered(validate: Callable[[Any], Any]) -> None:
    release = threading.Event()

    def hangs(_ctx: CollectContext) -> Collected:
        release.wait(30)
        return Collected({"never": "seen"})

    registry = {Domain.HOST: COLLECTORS[Domain.HOST], Domain.SERVICES: hangs}
    started = time.monotonic()
    try:
        document = collect_facts(_ctx(), IDENTITY, registry=registry, budget_seconds=0.5)
    finally:
        release.set()
    elapsed = time.monotonic() - started
    assert 0.5 <= elapsed < 5
    validate(document)
    assert "services" not in document
    assert document["host"]["hostname"] == "debian-web-01"
    assert document["errors"] == [
        {"domain": "services", "kind": "timeout", "reason": "collector did not finish within 0.5s"}
    ]


def test_collectors_run_concurrently_within_one_budget() -> None:
    def slow(_ctx: CollectContext) -> Collected:
        time.sleep(0.4)
        return Collected([])

    registry = {Domain.LISTENING: slow, Domain.SERVICES: slow, Domain.PACKAGES: slow}
    started = time.monotonic()
    document = collect_facts(_ctx(), IDENTITY, registry=registry, budget_seconds=1.0)
    assert time.monotonic() - started < 1.0
    assert document["errors"] == []
    assert document["listening"] == document["services"] == document["packages"] == []


def test_partial_issues_are_reported_with_the_data(validate: Callable[[Any], Any]) -> None:
    def partial(_ctx: CollectContext) -> Collected:
        return Collected([], (Issue(ErrorKind.PERMISSION, "3 sockets without owner"),))

    document = collect_facts(_ctx(), IDENTITY, registry={Domain.LISTENING: partial})
    validate(document)
    assert document["listening"] == []
    assert document["errors"] == [
        {"domain": "listening", "kind": "permission", "reason": "3 sockets without owner"}
    ]


def test_domain_selection_and_unknown_domains() -> None:
    document = collect_facts(_ctx(), IDENTITY, domains=[Domain.LISTENING, Domain.DISCOVERY])
    assert "listening" in document and "host" not in document
    assert document["errors"] == [
        {
            "domain": "discovery",
            "kind": "unsupported",
            "reason": "this agent has no collector for it",
        }
    ]


def test_oversized_reason_is_clipped_to_the_schema(validate: Callable[[Any], Any]) -> None:
    def verbose(_ctx: CollectContext) -> Collected:
        raise RuntimeError("x" * 10000)

    document = collect_facts(_ctx(), IDENTITY, registry={Domain.HOST: verbose})
    validate(document)
    assert len(document["errors"][0]["reason"]) == 4096


def test_real_collection_on_this_machine(validate: Callable[[Any], Any]) -> None:
    document = collect_facts(CollectContext(fqdn_resolver=lambda _n: None), IDENTITY)
    validate(document)
    assert document["host"]["interfaces"]
    assert isinstance(document["listening"], list)
    # Every domain is there; what a container or a non-root run lacks is "unsupported"
    # or "permission", never a failure or a timeout.
    assert set(COLLECTORS) <= {Domain(k) for k in document if k in {d.value for d in Domain}}
    assert [e for e in document["errors"] if e["kind"] in ("failed", "timeout")] == []


def test_an_ordinary_user_gets_a_valid_document_and_is_told_what_is_missing(
    validate: Callable[[Any], Any],
) -> None:
    require_root()  # to become someone else, for real

    def run() -> Any:
        return collect_facts(CollectContext(fqdn_resolver=lambda _n: None), IDENTITY)

    # Import everything lazily imported first: this interpreter may live where the
    # unprivileged child cannot read (a root-owned pyenv), which a real install is not.
    run()
    document = as_unprivileged(run)
    validate(document)
    for domain in ("host", "packages", "listening", "accounts", "ssh", "logging"):
        assert domain in document, domain
    assert document["accounts"]["shadow_readable"] is False
    kinds = {(e["domain"], e["kind"]) for e in document["errors"]}
    assert ("accounts", "permission") in kinds
    # What an ordinary user cannot read is "permission" (or "unsupported"), never a failure.
    assert [e for e in document["errors"] if e["kind"] in ("failed", "timeout")] == []


def test_each_collector_has_its_own_budget() -> None:
    release = threading.Event()

    def hangs(_ctx: CollectContext) -> Collected:
        release.wait(30)
        return Collected({})

    def quick(_ctx: CollectContext) -> Collected:
        return Collected([])

    budgets = {Domain.UPDATES: 0.3}
    started = time.monotonic()
    try:
        outcomes = run_collectors(
            _ctx(),
            {Domain.UPDATES: hangs, Domain.LISTENING: quick},
            budget_seconds=10,
            budgets=lambda d: budgets.get(d, 10.0),
        )
    finally:
        release.set()
    assert time.monotonic() - started < 2
    assert outcomes[Domain.UPDATES] == Issue(
        ErrorKind.TIMEOUT, "collector did not finish within 0.3s"
    )
    assert outcomes[Domain.LISTENING] == Collected([])
    assert budget_of(Domain.UPDATES) <= DEFAULT_BUDGET_SECONDS
