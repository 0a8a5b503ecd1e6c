"""Agency-scoped API tokens (issue 14): an agency's own IT staff read only their agency.

Over real HTTP against the real app (SQLite and PostgreSQL), then the read side's
queries called directly with a scope (the filter is in the SQL, not only in the
routers), then the CLI that creates and lists such tokens.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests
from click.testing import CliRunner

from server.auth.api_tokens import ApiCredential, create_api_token, verify_api_token
from server.cli.main import main
from server.clock import utc_now
from server.errors import ForbiddenError, InvalidArgumentError, NotFoundError
from server.evaluation.loaded_policy import ServerPolicy
from server.read import queries
from server.read.audit import AuditPolicy, build_audit
from server.storage.database import Database
from tests.server.conftest import LiveServer
from tests.server.helpers import body_of, make_facts, new_api_token, new_token, telnet

TIMEOUT = 60


def _viewer_of(database: Database, agency: str) -> str:
    with database.write() as session:
        _, plain = create_api_token(session, f"IT of {agency}", "viewer", utc_now, agency)
    return plain


def _get(server: LiveServer, path: str, token: str, **params: Any) -> requests.Response:
    return requests.get(
        f"{server.url}/api/v1{path}",
        params=params,
        headers={"Authorization": f"Bearer {token}"},
        timeout=TIMEOUT,
    )


def _report(server: LiveServer, token: str, **facts: Any) -> None:
    response = requests.post(
        server.reports_url,
        data=body_of(make_facts(**facts)),
        headers={"Authorization": f"Bearer {token}"},
        timeout=TIMEOUT,
    )
    assert response.status_code == 200, response.text


@pytest.fixture
def fleet(live_server: LiveServer) -> LiveServer:
    """so-a: web01 (fails the critical telnet rule) and db01; so-b: app01 (also telnet)."""
    database = live_server.database
    a_token, b_token = new_token(database, "so-a"), new_token(database, "so-b")
    _report(live_server, a_token, agent_id="agent-web", hostname="web01", listening=[telnet()])
    _report(live_server, new_token(database, "so-a"), agent_id="agent-db", hostname="db01")
    _report(live_server, b_token, agent_id="agent-app", hostname="app01", listening=[telnet()])
    return live_server


def test_scoped_viewer_reads_only_its_agency_over_http(fleet: LiveServer) -> None:
    scoped = _viewer_of(fleet.database, "so-a")
    province = new_api_token(fleet.database, "viewer")

    hosts = _get(fleet, "/hosts", scoped).json()
    assert sorted(h["agent_id"] for h in hosts["items"]) == ["agent-db", "agent-web"]
    assert hosts["total"] == 2
    assert _get(fleet, "/hosts", province).json()["total"] == 3  # the province sees all
    # Asking for the other agency by filter gives nothing, not its hosts.
    assert _get(fleet, "/hosts", scoped, agency="so-b").json()["total"] == 0

    for path in ("/hosts/agent-app", "/scores/hosts/agent-app", "/scores/agencies/so-b"):
        response = _get(fleet, path, scoped)
        assert response.status_code == 404, (path, response.text)
        assert _get(fleet, path, province).status_code == 200, path
    assert _get(fleet, "/hosts/agent-web", scoped).json()["agency"] == "so-a"
    assert _get(fleet, "/scores/agencies/so-a", scoped).status_code == 200

    findings = _get(fleet, "/findings", scoped).json()["items"]
    assert findings and {f["agency"] for f in findings} == {"so-a"}
    assert {f["agency"] for f in _get(fleet, "/findings", province).json()["items"]} == {
        "so-a",
        "so-b",
    }
    assert _get(fleet, "/findings", scoped, agent_id="agent-app").json()["total"] == 0

    ranking = _get(fleet, "/agencies", scoped).json()["items"]
    assert [(e["agency"], e["rank"], e["ranked_agencies"]) for e in ranking] == [("so-a", 1, 2)]
    # so-b's rank is its real one among every agency (public), not 1 of 1; so-a's
    # entry stays out of its answer.
    so_b = _get(fleet, "/agencies", _viewer_of(fleet.database, "so-b")).json()["items"]
    assert [(e["agency"], e["rank"], e["ranked_agencies"]) for e in so_b] == [("so-b", 2, 2)]
    everyone = _get(fleet, "/agencies", province).json()["items"]
    assert [(e["agency"], e["rank"]) for e in everyone] == [("so-a", 1), ("so-b", 2)]
    remediation = _get(fleet, "/remediation", scoped, by="agency").json()["items"]
    assert [row["agency"] for row in remediation] == ["so-a"]
    by_rule = _get(fleet, "/remediation", scoped, by="rule").json()["items"]
    province_by_rule = _get(fleet, "/remediation", province, by="rule").json()["items"]
    assert sum(r["open"] for r in by_rule) < sum(r["open"] for r in province_by_rule)


def test_scoped_viewer_audit_own_agency_only(fleet: LiveServer) -> None:
    scoped = _viewer_of(fleet.database, "so-a")
    own = _get(fleet, "/audit/json/agencies/so-a", scoped, lang="en")
    assert own.status_code == 200, own.text
    body = own.json()
    assert [a["standing"]["agency"] for a in body["agencies"]] == ["so-a"]
    assert [s["agency"] for s in body["ranking"]] == ["so-a"]  # no other agency's score
    assert "so-b" not in own.text and "agent-app" not in own.text
    assert (body["agencies"][0]["standing"]["rank"], body["ranked_agencies"]) == (1, 2)
    other = _get(fleet, "/audit/html/agencies/so-b", scoped)
    assert other.status_code == 404 and "app01" not in other.text
    province = _get(fleet, "/audit/csv/province", scoped)
    assert province.status_code == 403
    assert province.json()["error"]["code"] == "insufficient_scope"


def test_scoped_audit_shows_the_real_rank_among_all_agencies(fleet: LiveServer) -> None:
    """so-b ranks second of two: its audit says so, without so-a's name or score."""
    scoped = _viewer_of(fleet.database, "so-b")
    body = _get(fleet, "/audit/json/agencies/so-b", scoped).json()
    standing = body["agencies"][0]["standing"]
    assert (standing["agency"], standing["rank"], body["ranked_agencies"]) == ("so-b", 2, 2)
    assert [s["agency"] for s in body["ranking"]] == ["so-b"]
    page = _get(fleet, "/audit/html/agencies/so-b", scoped, lang="en")
    assert page.status_code == 200, page.text
    assert "<td>Rank</td><td>2 / 2</td>" in page.text
    assert "so-a" not in page.text and "web01" not in page.text
    # The province's viewer sees the same rank in the same agency's audit.
    province = new_api_token(fleet.database, "viewer")
    same = _get(fleet, "/audit/json/agencies/so-b", province).json()
    assert same["agencies"][0]["standing"]["rank"] == 2 and same["ranked_agencies"] == 2


def test_read_side_queries_filter_by_scope_themselves(
    fleet: LiveServer, policy: ServerPolicy
) -> None:
    """Called without any router: the scope alone keeps the other agency out."""
    stale_before = datetime.now(UTC) - timedelta(days=1)
    with fleet.database.session() as session:
        page = queries.Page()
        listed = queries.list_hosts(session, stale_before, page, scope="so-b")
        assert [h["agent_id"] for h in listed["items"]] == ["agent-app"]
        assert queries.host_detail(session, "agent-web", stale_before, scope="so-b") is None
        assert queries.host_detail(session, "agent-app", stale_before, scope="so-b")
        found = queries.list_findings(session, datetime.now(UTC), page, scope="so-b")
        assert found["total"] >= 1
        assert {f["agency"] for f in found["items"]} == {"so-b"}
        ranked = queries.agencies_ranked(session, policy.weights, stale_before, scope="so-b")
        assert [(e["agency"], e["rank"]) for e in ranked] == [("so-b", 2)]
        times = queries.remediation_times(session, "agency", datetime.now(UTC), scope="so-b")
        assert [row["agency"] for row in times] == ["so-b"]
        audit_policy = AuditPolicy.of(policy.policy, policy.fingerprint, policy.weights)
        as_of = datetime.now(UTC) + timedelta(minutes=5)
        common: dict[str, Any] = {"as_of": as_of, "stale_after_seconds": 86400}
        audit = build_audit(session, audit_policy, agency="so-b", scope="so-b", **common)
        assert [(s.agency, s.rank) for s in audit.ranking] == [("so-b", 2)]
        assert audit.ranked_agencies == 2
        assert audit.agencies[0].hosts and audit.agencies[0].standing.hosts == 1
        with pytest.raises(NotFoundError):
            build_audit(session, audit_policy, agency="so-a", scope="so-b", **common)
        with pytest.raises(ForbiddenError):
            build_audit(session, audit_policy, agency=None, scope="so-b", **common)


def test_only_viewer_tokens_of_existing_agencies_can_be_scoped(database: Database) -> None:
    new_token(database, "so-a")  # creates the agency
    with database.write() as session:
        with pytest.raises(InvalidArgumentError, match="viewer"):
            create_api_token(session, "root", "admin", utc_now, "so-a")
        with pytest.raises(InvalidArgumentError, match="no agency"):
            create_api_token(session, "ghost", "viewer", utc_now, "so-nowhere")
        _, plain = create_api_token(session, "IT", "viewer", utc_now, "so-a")
        _, admin = create_api_token(session, "root", "admin", utc_now)
    with database.session() as session:
        assert verify_api_token(session, plain)[0].agency == "so-a"
        assert verify_api_token(session, admin)[0].agency is None


def test_a_scoped_admin_row_is_no_admin() -> None:
    """Defence in depth: such a row can only come from editing the database by hand."""
    assert not ApiCredential("t", "n", "admin", "so-a").allows("admin")
    assert ApiCredential("t", "n", "admin", "so-a").allows("viewer")
    assert ApiCredential("t", "n", "admin", None).allows("admin")


def _cli(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_cli_creates_and_lists_scoped_tokens(db_url: str) -> None:
    assert _cli("agency", "add", "so-a", "--name", "Sở A", "--db", db_url)[0] == 0
    code, out, err = _cli(
        "api-token", "create", "--name", "IT A", "--agency", "so-a", "--db", db_url
    )
    assert code == 0, err
    assert out.startswith("cga_") and "agency so-a" in err
    assert _cli("api-token", "create", "--name", "all", "--db", db_url)[0] == 0
    code, _out, err = _cli(
        "api-token", "create", "--name", "x", "--role", "admin", "--agency", "so-a",
        "--db", db_url,
    )  # fmt: skip
    assert code == 2 and "viewer" in err
    code, _out, err = _cli(
        "api-token", "create", "--name", "x", "--agency", "so-zz", "--db", db_url
    )
    assert code == 2 and "no agency" in err
    code, listing, _ = _cli("api-token", "list", "--db", db_url)
    assert code == 0
    lines = listing.splitlines()
    assert lines[0].split()[:4] == ["TOKEN", "ID", "NAME", "ROLE"] and "AGENCY" in lines[0]
    scoped = next(line for line in lines if "IT A" in line)
    everyone = next(line for line in lines if " all " in line)
    assert " so-a " in scoped and " * " in everyone
    assert len(lines) == 3  # the refused ones were not stored
