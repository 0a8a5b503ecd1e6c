"""The audit package end to end: reports ingested over HTTP by a real collector on
loopback, the documents read back from `GET /api/v1/audit/...` and written by the
real `canhgac-server audit` process; `--as-of` reproduces a document later."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import requests

from server.auth.enrolment import add_agency
from server.clock import utc_now
from server.read.audit_views import AuditReport
from tests.server.conftest import LiveServer, LiveServers
from tests.server.helpers import RULES_DIR, body_of, make_facts, new_api_token, new_token, telnet
from tests.server.reports.fleet import FRAMEWORK, NAMES, T1, T2, WAIVERS, server_policy

TIMEOUT = 60
CLI = Path(sys.executable).with_name("canhgac-server")


@pytest.fixture
def collector(live_servers: LiveServers) -> LiveServer:
    server = live_servers.start(policy=server_policy(), frameworks=(FRAMEWORK,), waivers=(WAIVERS,))
    with server.database.write() as session:
        for agency, name in NAMES.items():
            add_agency(session, agency, name, utc_now)
    return server


class Agents:
    def __init__(self, server: LiveServer) -> None:
        self.server = server
        self.tokens: dict[str, str] = {}
        self.seq: dict[str, int] = {}

    def report(self, agency: str, agent_id: str, at: datetime, **facts: Any) -> None:
        token = self.tokens.setdefault(agent_id, new_token(self.server.database, agency))
        self.seq[agent_id] = self.seq.get(agent_id, 0) + 1
        document = make_facts(agent_id=agent_id, seq=self.seq[agent_id], collected_at=at, **facts)
        answer = requests.post(
            self.server.reports_url,
            data=body_of(document),
            headers={"Authorization": f"Bearer {token}"},
            timeout=TIMEOUT,
        )
        assert answer.status_code == 200, answer.text


def get(
    server: LiveServer, path: str, token: str | None, fmt: str = "json", **params: str
) -> requests.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return requests.get(
        f"{server.url}/api/v1/audit/{fmt}{path}", params=params, headers=headers, timeout=TIMEOUT
    )


def run_cli(server: LiveServer, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    config = tmp_path / "config.yaml"
    config.write_text(
        json.dumps(
            {
                "server": {
                    "rules": [str(RULES_DIR)],
                    "frameworks": [str(FRAMEWORK)],
                    "waivers": [str(WAIVERS)],
                }
            }
        )
    )
    db_url = server.config.database_url
    return subprocess.run(
        [str(CLI), "audit", "--config", str(config), "--db", db_url, *args],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )


def test_api_documents_and_errors(collector: LiveServer) -> None:
    agents = Agents(collector)
    agents.report("so-a", "agent-web", T1, hostname="web01", listening=[telnet()])
    agents.report("so-a", "agent-db", T1, hostname="db01")
    viewer = new_api_token(collector.database)

    answer = get(collector, "/agencies/so-a", viewer, as_of="2026-03-01")
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "application/json"
    report = AuditReport.model_validate(answer.json())
    assert report.agencies[0].standing.score == pytest.approx(16 / 26)
    assert [f.host for f in report.agencies[0].findings] == ["web01"]

    answer = get(collector, "/agencies/so-a", viewer, fmt="csv", lang="en", as_of="2026-03-01")
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "text/csv; charset=utf-8"
    assert "attachment" in answer.headers["content-disposition"]
    rows = list(csv.reader(io.StringIO(answer.content.decode("utf-8-sig"))))
    assert rows[0][0] == "Agency" and len(rows) == 2

    answer = get(collector, "/province", viewer, fmt="html", as_of="2026-03-01")
    assert answer.headers["content-type"] == "text/html; charset=utf-8"
    assert "Bảng xếp hạng các cơ quan" in answer.text

    assert get(collector, "/agencies/so-none", viewer).status_code == 404
    assert get(collector, "/agencies/so-a", None).status_code == 401
    assert get(collector, "/agencies/so-a", agents.tokens["agent-web"]).status_code in {401, 403}
    assert get(collector, "/agencies/so-a", viewer, fmt="docx").status_code == 404
    assert get(collector, "/agencies/so-a", viewer, lang="fr").status_code == 422
    assert get(collector, "/agencies/so-a", viewer, as_of="01/03/2026").status_code == 422
    ancient = get(collector, "/province", viewer, as_of="1185-11-04")
    assert ancient.status_code == 422 and ancient.json()["error"]["field"] == "as_of"
    assert get(collector, "/province", viewer, previous="9999-12-31").status_code == 422
    late = get(collector, "/province", viewer, as_of="2026-03-01", previous="2026-03-01")
    assert late.status_code == 422 and late.json()["error"]["field"] == "previous"


def test_cli_golden_with_as_of(collector: LiveServer, tmp_path: Path) -> None:
    agents = Agents(collector)
    agents.report("so-a", "agent-web", T1, hostname="web01", listening=[telnet()])
    agents.report("so-b", "agent-app", T1, hostname="app01")
    first = tmp_path / "first.json"
    done = run_cli(
        collector,
        tmp_path,
        "--all",
        "--as-of",
        "2026-03-01",
        "--format",
        "json",
        "--output",
        str(first),
    )
    assert done.returncode == 0, done.stderr

    # More history arrives: web01 fixed, a new host exposed.
    agents.report("so-a", "agent-web", T2, hostname="web01")
    agents.report("so-b", "agent-new", T2, hostname="new01", listening=[telnet()])
    second = tmp_path / "second.json"
    done = run_cli(
        collector,
        tmp_path,
        "--all",
        "--as-of",
        "2026-03-01",
        "--format",
        "json",
        "--output",
        str(second),
    )
    assert done.returncode == 0, done.stderr
    assert second.read_bytes() == first.read_bytes()
    # The API gives the same document for the same cut-off.
    viewer = new_api_token(collector.database)
    api = get(collector, "/province", viewer, as_of="2026-03-01").json()
    assert api == json.loads(first.read_text())

    later = tmp_path / "later.json"
    done = run_cli(
        collector,
        tmp_path,
        "--all",
        "--as-of",
        "2026-03-05",
        "--format",
        "json",
        "--previous",
        "2026-03-01",
        "--output",
        str(later),
    )
    assert done.returncode == 0, done.stderr
    agencies = {a["standing"]["agency"]: a for a in json.loads(later.read_text())["agencies"]}
    assert agencies["so-a"]["findings"] == []
    assert agencies["so-a"]["standing"]["change"] == pytest.approx(1 - 3 / 13)


def test_cli_usage_errors_write_nothing(collector: LiveServer, tmp_path: Path) -> None:
    target = tmp_path / "out.html"
    both = run_cli(
        collector,
        tmp_path,
        "--all",
        "--agency",
        "so-a",
        "--format",
        "html",
        "--output",
        str(target),
    )
    assert both.returncode == 2 and "exactly one of" in both.stderr
    backwards = run_cli(
        collector,
        tmp_path,
        *("--all", "--as-of", "2026-03-01", "--previous", "2026-03-02"),
        *("--format", "json", "--output", str(target)),
    )
    assert backwards.returncode == 2 and "--previous" in backwards.stderr
    ancient = run_cli(
        collector,
        tmp_path,
        "--all",
        "--as-of",
        "0001-01-01",
        "--format",
        "json",
        "--output",
        str(target),
    )
    assert ancient.returncode == 2 and "--as-of must be between" in ancient.stderr
    missing = run_cli(
        collector, tmp_path, "--agency", "so-none", "--format", "html", "--output", str(target)
    )
    assert missing.returncode == 1 and "so-none" in missing.stderr
    assert not target.exists()
    assert list(tmp_path.glob(".audit-*")) == []


def test_pdf_without_chromium_says_what_to_install(
    collector: LiveServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Chromium really absent from the PATH the collector and the command search."""
    Agents(collector).report("so-a", "agent-web", T1, hostname="web01")
    viewer = new_api_token(collector.database)
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    answer = get(collector, "/agencies/so-a", viewer, fmt="pdf", as_of="2026-03-01")
    assert answer.status_code == 503
    error = answer.json()["error"]
    assert error["code"] == "renderer_unavailable"
    assert "apt-get install chromium" in error["message"]
    target = tmp_path / "so-a.pdf"
    done = run_cli(
        collector, tmp_path, "--agency", "so-a", "--format", "pdf", "--output", str(target)
    )
    assert done.returncode == 1 and "apt-get install chromium" in done.stderr
    assert not target.exists()


def test_openapi_documents_the_audit_schema_and_media_types(collector: LiveServer) -> None:
    document = requests.get(f"{collector.url}/api/v1/openapi.json", timeout=TIMEOUT).json()
    schema = document["components"]["schemas"]["AuditReport"]
    assert {"schema", "as_of", "ranking", "agencies"} <= set(schema["properties"])
    paths = document["paths"]
    json_answer = paths["/api/v1/audit/json/province"]["get"]["responses"]["200"]
    assert json_answer["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/AuditReport"
    }
    for fmt, media in (("pdf", "application/pdf"), ("csv", "text/csv; charset=utf-8")):
        answer = paths[f"/api/v1/audit/{fmt}/agencies/{{agency_id}}"]["get"]["responses"]["200"]
        assert list(answer["content"]) == [media]


def test_table_option_of_the_command_and_the_api(collector: LiveServer, tmp_path: Path) -> None:
    Agents(collector).report("so-a", "agent-web", T1, hostname="web01")
    target = tmp_path / "hosts.csv"
    done = run_cli(
        collector, tmp_path, "--agency", "so-a", "--format", "csv", "--table", "hosts",
        "--as-of", "2026-03-01", "--output", str(target),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    rows = list(csv.reader(io.StringIO(target.read_text("utf-8-sig"))))
    assert rows[0][1] == "Máy chủ" and [r[1] for r in rows[1:]] == ["web01"]
    refused = run_cli(
        collector, tmp_path, "--all", "--format", "json", "--table", "hosts",
        "--output", str(tmp_path / "x.json"),
    )  # fmt: skip
    assert refused.returncode == 2 and "csv only" in refused.stderr
    assert not (tmp_path / "x.json").exists()
    token = new_api_token(collector.database, "viewer")
    answer = get(collector, "/agencies/so-a", token, "csv", table="hosts", as_of="2026-03-01")
    assert answer.status_code == 200
    assert answer.content == target.read_bytes()
    assert 'filename="audit-so-a-20260302-hosts.csv"' in answer.headers["Content-Disposition"]
    wrong = get(collector, "/province", token, "html", table="hosts")
    assert wrong.status_code == 422 and wrong.json()["error"]["field"] == "table"
    assert get(collector, "/province", token, "csv", table="nope").status_code == 422
