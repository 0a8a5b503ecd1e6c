"""Re-evaluation when the policy changes: every host's latest facts, one replica at a
time (lease), findings of removed rules resolved; `rules reload` and the app's reload."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from sqlalchemy import select

from server.background import policy_files_signature, reload_and_reevaluate
from server.cli.main import main
from server.config import ServerConfig
from server.evaluation.loaded_policy import ServerPolicy, load_server_policy
from server.evaluation.reeval import Reevaluator, last_applied_fingerprint
from server.ingest.service import IngestService
from server.storage.database import Database
from server.storage.models import Finding, Host
from tests.server.conftest import LiveServer
from tests.server.helpers import RULES_DIR, body_of, make_facts, new_token, telnet


def without_telnet(tmp_path: Path) -> Path:
    """The test pack without TEST-TELNET (a rule removed from the rule set)."""
    pack = yaml.safe_load((RULES_DIR / "server-tests.yaml").read_text("utf-8"))
    pack["rules"] = [r for r in pack["rules"] if r["id"] != "TEST-TELNET"]
    directory = tmp_path / "rules-b"
    directory.mkdir()
    (directory / "pack.yaml").write_text(yaml.safe_dump(pack, allow_unicode=True), "utf-8")
    return directory


def ingest(service: IngestService, token: str, **facts: Any) -> None:
    service.ingest(service.authenticate(token), body_of(make_facts(**facts)), None)


def host(database: Database, agent_id: str = "agent-1") -> Host:
    with database.session() as session:
        return session.scalars(select(Host).where(Host.agent_id == agent_id)).one()


def test_changed_policy_re_evaluates_every_host_and_resolves_removed_rules(
    service: IngestService, database: Database, policy: ServerPolicy, tmp_path: Path
) -> None:
    for index in range(3):
        ingest(service, new_token(database), agent_id=f"agent-{index}", listening=[telnet()])
    assert host(database, "agent-0").score_ratio == pytest.approx(3 / 13)
    changed = load_server_policy(ServerConfig(rules=(without_telnet(tmp_path),)))
    assert changed.fingerprint != policy.fingerprint
    reevaluator = Reevaluator(database)
    assert reevaluator.pending(changed)
    outcome = reevaluator.run(changed)
    assert (outcome.ran, outcome.hosts) == (True, 3)
    assert not reevaluator.pending(changed)
    for index in range(3):
        state = host(database, f"agent-{index}")
        assert (state.score_ratio, state.policy_fingerprint) == (1.0, changed.fingerprint)
        assert state.failing_critical == 0
    with database.session() as session:
        statuses = {f.status for f in session.scalars(select(Finding))}
    assert statuses == {"resolved"}
    assert last_applied_fingerprint(database)[0] == changed.fingerprint
    assert reevaluator.run(changed).hosts == 0  # idempotent


def test_only_the_lease_holder_re_evaluates(
    service: IngestService, database: Database, token: str, tmp_path: Path
) -> None:
    ingest(service, token)
    changed = load_server_policy(ServerConfig(rules=(without_telnet(tmp_path),)))
    holder, other = Reevaluator(database), Reevaluator(database)
    assert holder._acquire()
    assert other.run(changed).ran is False
    assert host(database).policy_fingerprint != changed.fingerprint
    holder._release()
    assert other.run(changed).hosts == 1


def test_new_reports_after_re_evaluation_use_the_new_policy(
    service: IngestService, database: Database, token: str, tmp_path: Path
) -> None:
    ingest(service, token, listening=[telnet()])
    changed = load_server_policy(ServerConfig(rules=(without_telnet(tmp_path),)))
    service.policy = changed
    ingest(service, token, seq=2, listening=[telnet()])  # same facts, new policy: evaluated
    assert host(database).score_ratio == 1.0


def test_running_app_reloads_its_policy(
    live_server: LiveServer, token: str, tmp_path: Path
) -> None:
    service = live_server.app.state.runtime.service
    ingest(service, token, listening=[telnet()])
    runtime = live_server.app.state.runtime
    rules = without_telnet(tmp_path)
    runtime.policy_loader = lambda: load_server_policy(ServerConfig(rules=(rules,)))
    assert reload_and_reevaluate(runtime) == 1
    assert host(live_server.database).score_ratio == 1.0
    assert reload_and_reevaluate(runtime) == 0


def test_rules_reload_command(
    service: IngestService, database: Database, db_url: str, token: str, tmp_path: Path
) -> None:
    ingest(service, token, listening=[telnet()])
    config = tmp_path / "config.yaml"
    config.write_text(
        yaml.safe_dump({"server": {"db_url": db_url, "rules": [str(without_telnet(tmp_path))]}}),
        "utf-8",
    )
    result = CliRunner().invoke(main, ["rules", "reload", "--config", str(config)])
    assert result.exit_code == 0, result.output
    assert "re-evaluated 1 host(s)" in result.stdout
    assert host(database).score_ratio == 1.0


def test_policy_files_are_reloaded_only_when_they_change(
    live_server: LiveServer, tmp_path: Path
) -> None:
    runtime = live_server.app.state.runtime
    rules = tmp_path / "rules"
    rules.mkdir()
    pack_file = rules / "pack.yaml"
    pack_file.write_text((RULES_DIR / "server-tests.yaml").read_text("utf-8"), "utf-8")
    runtime.config = ServerConfig(rules=(rules,))
    runtime.policy_files = policy_files_signature(runtime.config)
    loads: list[int] = []

    def loader() -> ServerPolicy:
        loads.append(1)
        return load_server_policy(runtime.config)

    runtime.policy_loader = loader
    reload_and_reevaluate(runtime, force=False)
    assert loads == []  # nothing changed: not even parsed
    pack_file.write_text(pack_file.read_text("utf-8") + "\n# edited\n", "utf-8")
    reload_and_reevaluate(runtime, force=False)
    assert loads == [1]
    assert runtime.service.policy.fingerprint == load_server_policy(runtime.config).fingerprint
    reload_and_reevaluate(runtime, force=True)  # SIGHUP always reloads
    assert loads == [1, 1]


def test_hosts_not_evaluated_today_are_evaluated_again(
    service: IngestService, database: Database, policy: ServerPolicy
) -> None:
    """Waivers expire by date: a host that stopped reporting is still re-judged daily."""
    from datetime import UTC, datetime, timedelta

    ingest(service, new_token(database), listening=[telnet()])
    reevaluator = Reevaluator(database)
    assert not reevaluator.pending(policy)  # evaluated at ingest, today
    tomorrow = datetime.now(UTC) + timedelta(days=1)
    later = Reevaluator(database, clock=lambda: tomorrow)
    assert later.pending(policy)
    assert later.run(policy).hosts == 1
    assert not later.pending(policy)
    assert host(database).evaluated_at == tomorrow
