"""`agent.app`: the orchestration behind the CLI, driven through its seams (a recorded
host, a fixed clock, a transport and an enrolment request that record what they got)."""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from agent import app
from agent.collectors.base import CollectContext
from agent.config import AgentConfig
from agent.delivery.enrolment import Enrolment
from agent.delivery.transport import Delivery, Transport
from agent.errors import ConfigError
from agent.state.identity import app_specific_id
from tests.agent.conftest import DATA, ROOTS
from tests.agent.fakes import FakeSystem, RecordedRunner, tcp

PACK = DATA / "rules" / "test-pack.yaml"
NOW = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)
ROOT = ROOTS / "debian12"


def recorded_host(*listeners: Any) -> app.HostAccess:
    context = CollectContext(
        root=ROOT,
        run=RecordedRunner(),
        system=FakeSystem(sockets=list(listeners)),
        fqdn_resolver=lambda _name: None,
    )
    return app.HostAccess(context=context, clock=lambda: NOW, hostname=lambda: "web01")


class RecordingTransport:
    def __init__(self) -> None:
        self.sent: list[Mapping[str, Any]] = []

    def send(self, document: Mapping[str, Any]) -> Delivery:
        self.sent.append(document)
        return Delivery("accepted", str(document["report_id"]), False, 0.5, 1)


def test_collect_takes_the_next_seq_with_the_given_clock(tmp_path: Path) -> None:
    host = recorded_host()
    first = app.collect(AgentConfig(), tmp_path, host)
    second = app.collect(AgentConfig(), tmp_path, host)
    assert (first["seq"], second["seq"]) == (1, 2)
    assert first["collected_at"] == "2026-03-01T09:30:00Z"
    machine_id = (ROOT / "etc" / "machine-id").read_text().strip()
    assert first["agent_id"] == app_specific_id(machine_id)
    assert json.loads((tmp_path / "state.json").read_text())["seq"] == 2


def test_collect_local_writes_nothing(tmp_path: Path) -> None:
    config = AgentConfig(state_dir=tmp_path / "state", agent_id="so-ttt-web01")
    document = app.collect_local(config, recorded_host())
    assert document["seq"] == 0 and document["agent_id"] == "so-ttt-web01"
    assert not (tmp_path / "state").exists()


def test_check_returns_results_score_and_collector_notes(tmp_path: Path) -> None:
    facts = app.collect_local(AgentConfig(), recorded_host(tcp("0.0.0.0", 23, 1)))
    facts["errors"].append({"domain": "listening", "kind": "permission", "reason": "2 of 5"})
    outcome = app.check([PACK], facts)
    assert {r.rule_id for r in outcome.results} == {
        "TEST-TELNET",
        "TEST-HTTP",
        "TEST-HOSTNAME",
        "TEST-SSH",
    }
    # The outcome carries the ruleset it evaluated (the report's remediations come from
    # it, without loading the packs a second time).
    assert [rule.id for rule in outcome.ruleset.rules] == [r.rule_id for r in outcome.results]
    assert outcome.score.failed >= 1
    # listening was reported, with 2 of 5 owners unreadable: a partial note
    assert app.CollectorNote("listening", "permission", "2 of 5", partial=True) in outcome.notes


def test_rule_paths_flags_then_config_then_builtin(tmp_path: Path) -> None:
    assert app.rule_paths_for(AgentConfig(rules=(tmp_path,)), [PACK]) == [PACK]
    assert app.rule_paths_for(AgentConfig(rules=(tmp_path,)), []) == [tmp_path]
    assert app.rule_paths_for(AgentConfig(), [])[0].name == "packs"


def test_read_facts_from_a_stream_and_refusals(tmp_path: Path) -> None:
    text = json.dumps({"schema": "canhgac.facts/v1", "errors": []})
    assert app.read_facts(Path("-"), io.StringIO(text))["errors"] == []
    bad = tmp_path / "latin1.json"
    bad.write_bytes(b'{"x": "\xe9"}')
    with pytest.raises(ConfigError, match="not valid JSON"):
        app.read_facts(bad, io.StringIO())


def test_run_once_ships_one_collected_report(tmp_path: Path) -> None:
    transport = RecordingTransport()
    delivery = app.run_once(AgentConfig(), tmp_path, transport, recorded_host())
    (document,) = transport.sent
    assert delivery.report_id == document["report_id"] and document["seq"] == 1


def test_open_transport_token_precedence_and_errors(tmp_path: Path) -> None:
    made: list[tuple[str, str, Path | None, float]] = []

    def factory(server_url: str, token: str, *, ca_file: Path | None, timeout: float) -> Transport:
        made.append((server_url, token, ca_file, timeout))
        return RecordingTransport()

    config = AgentConfig(server="https://collector.example", ca_file=tmp_path / "ca.pem")
    env = {app.TOKEN_ENV: "from-env"}
    app.open_transport(config, tmp_path, app.Shipping(timeout=5), env, factory)
    app.open_transport(config, tmp_path, app.Shipping(token="flag"), env, factory)
    (tmp_path / "agent.token").write_text("enrolled\n")
    app.open_transport(config, tmp_path, app.Shipping(), {}, factory)
    assert made == [
        ("https://collector.example", "from-env", tmp_path / "ca.pem", 5),
        ("https://collector.example", "flag", tmp_path / "ca.pem", 30.0),
        ("https://collector.example", "enrolled\n", tmp_path / "ca.pem", 30.0),
    ]
    with pytest.raises(ConfigError, match="no collector URL"):
        app.open_transport(AgentConfig(), tmp_path, app.Shipping(token="t"), {}, factory)
    with pytest.raises(ConfigError, match="no token"):
        app.open_transport(config, tmp_path / "empty", app.Shipping(), {}, factory)


def test_enrol_sends_the_identity_and_saves_the_token(tmp_path: Path) -> None:
    asked: list[dict[str, Any]] = []

    def request(server_url: str, secret: str, **fields: Any) -> Enrolment:
        asked.append({"server_url": server_url, "secret": secret, **fields})
        return Enrolment("so-ttt", fields["agent_id"], "tid", "cgt_abc_secret")

    request_fn: Callable[..., Enrolment] = request
    config = AgentConfig(server="https://collector.example")
    enrolled = app.enrol(
        config,
        tmp_path,
        app.Shipping(timeout=7),
        "cge_secret",
        force=False,
        host=recorded_host(),
        request=request_fn,
    )
    (call,) = asked
    assert call["hostname"] == "web01" and call["timeout"] == 7
    assert call["machine_id"] == (ROOT / "etc" / "machine-id").read_text().strip()
    assert enrolled.token_path.read_text() == "cgt_abc_secret\n"
    assert enrolled.token_path.stat().st_mode & 0o777 == 0o600
    with pytest.raises(ConfigError, match="already enrolled"):
        app.enrol(
            config,
            tmp_path,
            app.Shipping(),
            "cge_secret",
            force=False,
            host=recorded_host(),
            request=request_fn,
        )


def test_enrolment_secret_file_then_environment(tmp_path: Path) -> None:
    secret_file = tmp_path / "secret"
    secret_file.write_text("from-file")
    assert app.enrolment_secret(secret_file, {app.ENROL_SECRET_ENV: "env"}) == "from-file"
    assert app.enrolment_secret(None, {app.ENROL_SECRET_ENV: "env"}) == "env"
    with pytest.raises(ConfigError, match="no enrolment secret"):
        app.enrolment_secret(None, {})
