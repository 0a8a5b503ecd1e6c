"""Fix commands on the read API, over real HTTP: a live collector with the built-in
packs receives the reports of facts the real agent collectors read from the recorded
Debian 12 and Rocky Linux 9 root trees; the host detail gives each finding and failing
result the command for the host's OS family, the findings list each rule's commands
by family."""

from __future__ import annotations

from typing import Any

import pytest
import requests

from agent.collectors.base import CollectContext
from agent.document import collect_facts
from agent.state.identity import Identity
from rules.language.loader import builtin_packs_dir, load_rules
from rules.language.model import OsFamily
from server.config import ServerConfig
from server.evaluation.loaded_policy import load_server_policy
from tests.agent.conftest import ROOTS
from tests.agent.fakes import FakeSystem, RecordedRunner
from tests.server.conftest import LiveServer, LiveServers
from tests.server.helpers import body_of, new_api_token, new_token

TIMEOUT = 30
RULE = "LOG-SYSLOG-ABSENT"  # fails on every recorded tree: no syslog daemon runs
RSYSLOG = {
    "debian": "apt-get install -y rsyslog && systemctl enable --now rsyslog",
    "rhel": "dnf install -y rsyslog && systemctl enable --now rsyslog",
}
HOSTS = {"agent-deb": "debian12", "agent-rocky": "rocky9", "agent-other": "debian12"}


def _facts(agent_id: str) -> dict[str, Any]:
    ctx = CollectContext(
        root=ROOTS / HOSTS[agent_id],
        run=RecordedRunner(),
        system=FakeSystem(sockets=[], owners={}),
        fqdn_resolver=lambda _n: None,
    )
    facts = collect_facts(ctx, Identity(agent_id, 1))
    if agent_id == "agent-other":  # a family the rules have no command for
        facts["host"]["os"]["family"] = "other"
    return facts


@pytest.fixture
def server(live_servers: LiveServers) -> LiveServer:
    policy = load_server_policy(ServerConfig(rules=(builtin_packs_dir(),)))
    live = live_servers.start(policy=policy)
    for agent_id in HOSTS:
        token = new_token(live.database, "so-a")
        response = requests.post(
            live.reports_url,
            data=body_of(_facts(agent_id)),
            headers={"Authorization": f"Bearer {token}"},
            timeout=TIMEOUT,
        )
        assert response.status_code == 200, response.text
    return live


def _get(server: LiveServer, path: str, **params: Any) -> Any:
    token = new_api_token(server.database)
    response = requests.get(
        f"{server.url}/api/v1{path}",
        params=params,
        headers={"Authorization": f"Bearer {token}"},
        timeout=TIMEOUT,
    )
    assert response.status_code == 200, response.text
    return response.json()


@pytest.mark.parametrize(("agent_id", "family"), [("agent-deb", "debian"), ("agent-rocky", "rhel")])
def test_host_detail_gives_the_command_for_the_host_family(
    server: LiveServer, agent_id: str, family: str
) -> None:
    detail = _get(server, f"/hosts/{agent_id}")
    assert detail["os_family"] == family
    results = {r["rule_id"]: r for r in detail["results"]}
    assert results[RULE]["status"] == "fail"
    assert results[RULE]["fix"] == RSYSLOG[family]
    rules = {rule.id: rule for rule in load_rules([builtin_packs_dir()]).rules}
    for result in detail["results"]:
        expected = rules[result["rule_id"]].fix_for(OsFamily(family))
        assert result["fix"] == (expected if result["status"] == "fail" else None)
    assert any(r["fix"] is not None for r in detail["results"] if r["rule_id"] != RULE)
    syslog = [f for f in detail["findings"] if f["rule_id"] == RULE]
    assert syslog and all(f["fix"] == RSYSLOG[family] for f in syslog)
    assert all(f["fixes"] == RSYSLOG for f in syslog)
    for finding in detail["findings"]:  # the fix is the map's entry for the family
        assert finding["fix"] == finding["fixes"].get(family)


def test_unknown_family_gets_no_command_but_still_the_map(server: LiveServer) -> None:
    detail = _get(server, "/hosts/agent-other")
    assert detail["os_family"] is None
    assert detail["results"] and all(r["fix"] is None for r in detail["results"])
    syslog = [f for f in detail["findings"] if f["rule_id"] == RULE]
    assert syslog and all(f["fix"] is None and f["fixes"] == RSYSLOG for f in syslog)


def test_findings_list_carries_each_rule_commands_by_family(server: LiveServer) -> None:
    page = _get(server, "/findings", rule=RULE)
    assert {f["agent_id"] for f in page["items"]} == set(HOSTS)
    assert all(f["fixes"] == RSYSLOG and "fix" not in f for f in page["items"])
    rules = {rule.id: rule for rule in load_rules([builtin_packs_dir()]).rules}
    every = _get(server, "/findings", limit=1000)["items"]
    without = [f for f in every if not rules[f["rule_id"]].fix]
    assert without and all(f["fixes"] == {} for f in without)
    for finding in every:
        fix = rules[finding["rule_id"]].fix
        assert finding["fixes"] == {family.value: command for family, command in fix.items()}


def test_openapi_describes_the_fix_fields(server: LiveServer) -> None:
    schemas = requests.get(f"{server.url}/api/v1/openapi.json", timeout=TIMEOUT).json()[
        "components"
    ]["schemas"]
    assert "os_family" in schemas["HostDetail"]["required"]
    assert "fix" in schemas["HostFindingView"]["required"]
    assert "fixes" in schemas["FindingView"]["required"]
    assert "fix" in schemas["RuleResultView"]["properties"]
