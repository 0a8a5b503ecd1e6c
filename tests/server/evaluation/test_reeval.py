"""Re-evaluation when the policy changes: every host's latest facts, one replica at a
time (lease), findings of removed rules resolved; `rules reload` and the app's reload."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

import pytest
import yaml
from click.testing import CliRunner
from sqlalchemy import CursorResult, select, update

from server.background import reload_and_reevaluate
from server.cli.main import main
from server.clock import utc_now
from server.config import ServerConfig
from server.evaluation.loaded_policy import ServerPolicy, load_server_policy
from server.evaluation.reeval import (
    LEASE_SECONDS,
    ReevalReport,
    Reevaluator,
    last_applied_fingerprint,
)
from server.ingest.service import IngestService
from server.storage.database import Database
from server.storage.models import Finding, Host, PolicyState
from tests.server.conftest import LiveServers
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


def another_replica_holds_the_lease(database: Database, until: datetime) -> None:
    """What a replica in the middle of a run (or dead in it) leaves in `policy_state`."""
    with database.write() as session:
        held = session.execute(
            update(PolicyState).values(lease_owner="replica-b", lease_expires_at=until)
        )
        assert cast(CursorResult[Any], held).rowcount == 1


def test_only_the_lease_holder_re_evaluates(
    service: IngestService,
    database: Database,
    policy: ServerPolicy,
    token: str,
    tmp_path: Path,
) -> None:
    ingest(service, token)
    assert Reevaluator(database).run(policy).hosts == 0  # the lease row exists, free
    changed = load_server_policy(ServerConfig(rules=(without_telnet(tmp_path),)))
    now = utc_now()
    another_replica_holds_the_lease(database, until=now + timedelta(seconds=LEASE_SECONDS))
    assert Reevaluator(database, clock=lambda: now).run(changed).ran is False
    assert host(database).policy_fingerprint != changed.fingerprint
    # The holder died mid-run: once its lease expires, the next replica takes over.
    after = now + timedelta(seconds=LEASE_SECONDS + 1)
    assert Reevaluator(database, clock=lambda: after).run(changed).hosts == 1
    assert host(database).policy_fingerprint == changed.fingerprint
    # ...and releases the lease when done: anyone may run (nothing left to do).
    assert Reevaluator(database, clock=lambda: after).run(changed) == ReevalReport(ran=True)


def test_new_reports_after_re_evaluation_use_the_new_policy(
    service: IngestService, database: Database, token: str, tmp_path: Path
) -> None:
    ingest(service, token, listening=[telnet()])
    changed = load_server_policy(ServerConfig(rules=(without_telnet(tmp_path),)))
    service.policy = changed
    ingest(service, token, seq=2, listening=[telnet()])  # same facts, new policy: evaluated
    assert host(database).score_ratio == 1.0


def test_running_app_reloads_its_policy(
    live_servers: LiveServers, token: str, tmp_path: Path
) -> None:
    rules = without_telnet(tmp_path)
    live_server = live_servers.start(
        policy_loader=lambda: load_server_policy(ServerConfig(rules=(rules,)))
    )
    runtime = live_server.app.state.runtime
    ingest(runtime.service, token, listening=[telnet()])
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
    live_servers: LiveServers, tmp_path: Path
) -> None:
    rules = tmp_path / "rules"
    rules.mkdir()
    pack_file = rules / "pack.yaml"
    pack_file.write_text((RULES_DIR / "server-tests.yaml").read_text("utf-8"), "utf-8")
    loads: list[int] = []

    def loader() -> ServerPolicy:
        loads.append(1)
        return load_server_policy(ServerConfig(rules=(rules,)))

    runtime = live_servers.start(rules=(rules,), policy_loader=loader).app.state.runtime
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
    ingest(service, new_token(database), listening=[telnet()])
    reevaluator = Reevaluator(database)
    assert not reevaluator.pending(policy)  # evaluated at ingest, today
    tomorrow = datetime.now(UTC) + timedelta(days=1)
    later = Reevaluator(database, clock=lambda: tomorrow)
    assert later.pending(policy)
    assert later.run(policy).hosts == 1
    assert not later.pending(policy)
    assert host(database).evaluated_at == tomorrow
