"""Ubuntu's VEX beside its OSV data: OSV lists an "ignored" package like a "needed" one
(affected, no fix), VEX's "no longer supported" tells them apart: `end_of_life`, which
no rule counts as urgent (only `fix_available` fails the vulnerability rules), while
a deferred package stays `affected_no_fix` and a published fix stays a fix."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from rules.language.loader import builtin_packs_dir
from server.config import ServerConfig
from server.evaluation.loaded_policy import load_server_policy
from server.vulns.bundle import merge_feeds
from server.vulns.errors import VulnDbError
from server.vulns.feeds.detect import read_feed
from server.vulns.matching import VulnMatcher
from server.vulns.store import build_store
from tests.server.vulns.conftest import DATA, FETCHED, IMPORTED, TODAY, recorded_facts

VEX = DATA / "ubuntu-vex"


def _ubuntu(version_id: str, codename: str) -> dict[str, Any]:
    # The recorded Debian 12 packages, presented as an Ubuntu host.
    facts = recorded_facts()
    facts["host"]["os"].update(id="ubuntu", version_id=version_id, version_codename=codename)
    return facts


def _states(store: Path, facts: dict[str, Any]) -> dict[str, str]:
    domain, problem = VulnMatcher(store, 7).match(facts, TODAY)
    assert problem is None and domain is not None
    return {i["package"]: i["state"] for i in domain["items"] if i["cve"] == "CVE-2099-2003"}


def test_vex_end_of_support_overrides_osv_affected_only(tmp_path: Path) -> None:
    vex = read_feed(VEX / "CVE-2099-2003.json", FETCHED)
    assert (vex.name, vex.format) == ("ubuntu-vex", "ubuntu-openvex")
    # only the source purls of the "no longer supported" statement, release by codename
    assert {(a.distro, a.release, a.package, a.status.value) for a in vex.advisories} == {
        ("ubuntu-vex", "20.04", "libxml2", "end_of_life"),
        ("ubuntu-vex", "20.04", "openssl", "end_of_life"),
    }
    osv = read_feed(VEX / "UBUNTU-CVE-2099-2003.json", FETCHED)
    osv_only = tmp_path / "osv.sqlite"
    build_store(osv_only, [osv], IMPORTED)
    both = tmp_path / "both.sqlite"
    build_store(both, merge_feeds([osv, vex]), IMPORTED)
    focal = _ubuntu("20.04", "focal")
    assert _states(osv_only, focal) == {"libxml2": "affected_no_fix", "openssl": "fix_available"}
    assert _states(both, focal) == {"libxml2": "end_of_life", "openssl": "fix_available"}
    # noble's libxml2 is deferred (under_investigation): still affected, no fix
    assert _states(both, _ubuntu("24.04", "noble")) == {"libxml2": "affected_no_fix"}


def test_a_vex_file_that_is_not_ubuntus_shape_is_refused(tmp_path: Path) -> None:
    document = json.loads((VEX / "CVE-2099-2003.json").read_text("utf-8"))
    document["statements"][0]["products"][0]["@id"] = "pkg:rpm/redhat/libxml2@2.9.13"
    bad = tmp_path / "CVE-2099-2003.json"
    bad.write_text(json.dumps(document), "utf-8")
    with pytest.raises(VulnDbError, match="not an Ubuntu package purl"):
        read_feed(bad, FETCHED)
    document["metadata"]["author"] = "Someone Else"
    bad.write_text(json.dumps(document), "utf-8")
    with pytest.raises(VulnDbError, match="not a known feed format"):
        read_feed(bad, FETCHED)


def test_the_rules_fail_on_the_fix_not_on_the_end_of_support(tmp_path: Path) -> None:
    """The real rule pack on the collector's policy: five weeks after import, the medium
    openssl fix is overdue (fails), libxml2 given up by Ubuntu is not an item."""
    store = tmp_path / "vulndb.sqlite"
    feeds = [
        read_feed(VEX / n, FETCHED) for n in ("UBUNTU-CVE-2099-2003.json", "CVE-2099-2003.json")
    ]
    build_store(store, merge_feeds(feeds), IMPORTED)
    config = ServerConfig(
        rules=(builtin_packs_dir() / "vulnerabilities.yaml",),
        vulndb_path=store,
        vulndb_max_age_days=60,
    )
    outcome = load_server_policy(config).evaluate(
        _ubuntu("20.04", "focal"), "agency", "host", "agent", date(2027, 1, 5)
    )
    results = {r.rule_id: r for r in outcome.results}
    medium = results["VULN-MEDIUM-FIX-AVAILABLE"]
    assert (medium.status.value, [i.key for i in medium.items]) == (
        "fail",
        ["CVE-2099-2003 openssl"],
    )
