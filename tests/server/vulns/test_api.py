"""GET /api/v1/vulnerabilities over real HTTP against the real app (SQLite and
PostgreSQL): recorded Debian 12 facts posted by agents of two agencies, matched at
read time against an imported store; filters, agency scope, unmatched hosts."""

from __future__ import annotations

import json
import subprocess
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import requests
from click.testing import CliRunner
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import select

from rules.language.loader import builtin_packs_dir
from server.auth.api_tokens import create_api_token
from server.background import reload_and_reevaluate
from server.cli.main import main
from server.clock import utc_now
from server.config import ServerConfig
from server.evaluation.loaded_policy import ServerPolicy, load_server_policy
from server.metrics.vulnerabilities import VULNDB_AGE
from server.storage.database import Database
from server.storage.models import Finding
from tests.server.conftest import LiveServer, LiveServers
from tests.server.helpers import body_of, iso, new_api_token, new_token
from tests.server.vulns.conftest import DATA, import_samples, recorded_facts, with_kernels
from tests.support import require_tool

TIMEOUT = 60


def _post(url: str, token: str, facts: dict[str, Any], agent_id: str) -> None:
    facts.update(
        agent_id=agent_id, seq=1, report_id=str(uuid.uuid4()), collected_at=iso(datetime.now(UTC))
    )
    answer = requests.post(
        f"{url}/api/v1/reports",
        data=body_of(facts),
        headers={"Authorization": f"Bearer {token}"},
        timeout=TIMEOUT,
    )
    assert answer.status_code == 200, answer.text


def _get(url: str, token: str | None, **params: Any) -> requests.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return requests.get(
        f"{url}/api/v1/vulnerabilities", params=params, headers=headers, timeout=TIMEOUT
    )


def _served(live_servers: LiveServers, tmp_path: Path) -> LiveServer:
    """A live collector with the vulnerabilities pack and a store of the samples."""
    store = tmp_path / "vulndb.sqlite"
    import_samples(store, ("debian-tracker.json", "kev.json", "epss.csv"))
    # A long max age: the samples are dated 29/11/2026 and this runs on the real clock.
    config = ServerConfig(
        rules=(builtin_packs_dir() / "vulnerabilities.yaml",),
        vulndb_path=store,
        vulndb_max_age_days=3650,
    )
    return live_servers.start(policy=load_server_policy(config))


def test_vulnerabilities_api(live_servers: LiveServers, database: Database, tmp_path: Path) -> None:
    server = _served(live_servers, tmp_path)
    _post(server.url, new_token(database, "so-a"), with_kernels(recorded_facts()), "web-a")
    rocky = recorded_facts()
    rocky["host"]["os"].update(id="rocky", version_codename=None)
    _post(server.url, new_token(database, "so-a"), rocky, "rocky-a")
    _post(server.url, new_token(database, "so-b"), recorded_facts(), "web-b")

    viewer = new_api_token(database)
    everything = _get(server.url, viewer, limit=1000).json()
    by_host: dict[str, set[str]] = {}
    for item in everything["items"]:
        by_host.setdefault(item["agent_id"], set()).add(item["cve"])
    assert by_host["web-a"] - by_host["web-b"] == {"CVE-2099-1012"}  # only web-a runs 6.1.0-41
    assert everything["total"] == 8 + 7
    assert [(h["agent_id"], "no imported feed covers rocky" in h["reason"])
            for h in everything["unmatched"]] == [("rocky-a", True)]  # fmt: skip

    kev = _get(server.url, viewer, kev="true", agency="so-a").json()["items"]
    assert {(i["cve"], i["package"]) for i in kev} == {
        ("CVE-2099-1001", "openssl"),
        ("CVE-2099-1012", "linux"),
    }
    pending = _get(server.url, viewer, state="fix_pending", host="web-b").json()["items"]
    assert [(i["package"], i["installed_version"], i["fixed_version"]) for i in pending] == [
        ("glibc", "2.36-9+deb12u14", "2.36-9+deb12u15")
    ]
    minor = _get(server.url, viewer, severity="negligible", host="web-b").json()["items"]
    assert [(i["package"], i["no_dsa"], i["state"]) for i in minor] == [
        ("bash", True, "affected_no_fix")
    ]
    page = _get(server.url, viewer, limit=2, offset=14).json()
    assert (page["total"], len(page["items"])) == (15, 1)

    with database.write() as session:
        _, scoped = create_api_token(session, "IT of so-b", "viewer", utc_now, "so-b")
    own = _get(server.url, scoped, limit=1000).json()
    assert {i["agency"] for i in own["items"]} == {"so-b"} and own["unmatched"] == []
    assert _get(server.url, scoped, agency="so-a").json()["total"] == 0

    assert _get(server.url, None).status_code == 401
    assert _get(server.url, viewer, state="clean").status_code == 422


def test_vulnerability_metrics_without_cve_labels(
    live_servers: LiveServers, database: Database, tmp_path: Path
) -> None:
    server = _served(live_servers, tmp_path)
    _post(server.url, new_token(database, "so-a"), with_kernels(recorded_facts()), "web-a")
    rocky = recorded_facts()
    rocky["host"]["os"].update(id="rocky", version_codename=None)
    rocky["host"]["hostname"] = 'rocky"\nevil'  # escaped, never a second line
    _post(server.url, new_token(database, "so-a"), rocky, "rocky-a")
    deadline = time.monotonic() + 20
    while True:
        text = requests.get(f"{server.url}/metrics", timeout=TIMEOUT).text
        if "canhgac_host_vulnerabilities_unmatched{" in text or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    found = {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name.startswith(("canhgac_host_vulnerabilities", "canhgac_vulndb"))
    }
    web = ("agency", "so-a"), ("host", "debian-vuln-01")
    assert found[("canhgac_host_vulnerabilities", (*web, ("severity", "high"),
                  ("state", "fix_available")))] == 2  # fmt: skip
    assert found[("canhgac_host_vulnerabilities", (*web, ("severity", "medium"),
                  ("state", "fix_pending")))] == 1  # fmt: skip
    assert sum(v for (name, _), v in found.items() if name == "canhgac_host_vulnerabilities") == 8
    assert not any("cve" in dict(labels) for _, labels in found)
    unmatched = [dict(labels) for name, labels in found if name.endswith("_unmatched")]
    assert [u["agency"] for u in unmatched] == ["so-a"] and "\n" not in unmatched[0]["host"]
    ages = {dict(labels)["feed"]: v for (name, labels), v in found.items() if name == VULNDB_AGE}
    assert set(ages) == {"debian-tracker", "kev", "epss"} and all(v > 0 for v in ages.values())
    promtool = require_tool("promtool")
    lint = subprocess.run(
        [promtool, "check", "metrics"], input=text.encode(), capture_output=True, check=False
    )
    assert lint.returncode == 0 and lint.stdout + lint.stderr == b"", lint.stdout + lint.stderr


def test_an_import_re_evaluates_every_host_without_a_new_report(
    live_servers: LiveServers, database: Database, tmp_path: Path
) -> None:
    """The running collector sees the new store file at its policy check (the same
    path as SIGHUP): the store's generation is in the policy fingerprint."""
    store = tmp_path / "vulndb.sqlite"
    import_samples(store, ("debian-tracker.json", "kev.json"))
    settings: dict[str, Any] = {
        "rules": (builtin_packs_dir() / "vulnerabilities.yaml",),
        "vulndb_path": store,
        "vulndb_max_age_days": 3650,
    }

    def loader() -> ServerPolicy:
        return load_server_policy(ServerConfig(**settings))

    server = live_servers.start(policy=loader(), policy_loader=loader, **settings)
    runtime = server.app.state.runtime
    _post(server.url, new_token(database, "so-a"), with_kernels(recorded_facts()), "web-a")
    kev_open = {f.item_key for f in _open_findings(database, "VULN-KEV-FIX-AVAILABLE")}
    assert kev_open == {"CVE-2099-1001 openssl", "CVE-2099-1012 linux"}
    assert reload_and_reevaluate(runtime, force=False) == 0  # nothing changed
    tracker = json.loads((DATA / "debian-tracker.json").read_text("utf-8"))
    del tracker["linux"]
    newer = tmp_path / "debian-tracker.json"
    newer.write_text(json.dumps(tracker), "utf-8")
    assert (
        CliRunner().invoke(main, ["vulndb", "import", "--store", str(store), str(newer)]).exit_code
        == 0
    )
    assert reload_and_reevaluate(runtime, force=False) == 1  # the file changed: re-matched
    kev_open = {f.item_key for f in _open_findings(database, "VULN-KEV-FIX-AVAILABLE")}
    assert kev_open == {"CVE-2099-1001 openssl"}


def _open_findings(database: Database, rule: str) -> list[Finding]:
    with database.session() as session:
        return list(
            session.scalars(
                select(Finding).where(Finding.rule_id == rule, Finding.status == "open")
            )
        )
