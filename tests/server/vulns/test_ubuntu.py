"""Ubuntu's OSV records (a single record and the all.zip form), matched by release
version (VERSION_ID) and source package; fixes only in Ubuntu Pro are not counted as
available from the public archive."""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any

import pytest

from server.vulns.errors import VulnDbError
from server.vulns.feeds.detect import read_feed
from server.vulns.matching import VulnMatcher
from server.vulns.store import build_store
from tests.server.vulns.conftest import DATA, FETCHED, IMPORTED, TODAY, recorded_facts

OSV = DATA / "ubuntu-osv"


def _zip(path: Path) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for record in sorted(OSV.glob("*.json")):
            archive.write(record, f"osv/{record.name}")
    return path


def _noble() -> dict[str, Any]:
    # The recorded Debian 12 packages, presented as an Ubuntu 24.04 host.
    facts = recorded_facts()
    facts["host"]["os"].update(id="ubuntu", version_id="24.04", version_codename="noble")
    return facts


def test_zip_of_osv_records_matched_by_version_id(tmp_path: Path) -> None:
    store = tmp_path / "vulndb.sqlite"
    feed = read_feed(_zip(tmp_path / "all.zip"), FETCHED)
    assert (feed.name, feed.format) == ("ubuntu-osv", "ubuntu-osv")
    build_store(store, [feed], IMPORTED)
    domain, problem = VulnMatcher(store, 7).match(_noble(), TODAY)
    assert problem is None and domain is not None
    items = {item["package"]: item for item in domain["items"]}
    assert set(items) == {"openssl", "curl", "libxml2"}
    assert (items["openssl"]["state"], items["openssl"]["severity"]) == ("fix_available", "high")
    assert items["openssl"]["pro_only"] is False  # the 20.04 Pro fix is another release
    curl = items["curl"]
    assert (curl["state"], curl["pro_only"]) == ("fix_pending", True)  # not in the archive
    assert items["libxml2"]["state"] == "affected_no_fix"
    focal = _noble()
    focal["host"]["os"].update(version_id="22.04")  # not in the records: not covered
    assert VulnMatcher(store, 7).match(focal, TODAY)[1] is not None


def test_a_single_record_and_a_broken_archive(tmp_path: Path) -> None:
    feed = read_feed(OSV / "UBUNTU-CVE-2099-2001.json", FETCHED)
    assert {(a.release, a.package, a.pro_only) for a in feed.advisories} == {
        ("20.04", "openssl", True),
        ("24.04", "openssl", False),
    }
    cut = tmp_path / "cut.zip"
    cut.write_bytes(_zip(tmp_path / "all.zip").read_bytes()[:200])
    with pytest.raises(VulnDbError, match="not a readable OSV zip"):
        read_feed(cut, FETCHED)
