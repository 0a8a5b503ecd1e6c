"""Matching the recorded Debian 12 facts against the Debian tracker sample: each trap
the peers' users report, one assertion each."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from server.vulns.matching import VulnMatcher
from tests.server.vulns.conftest import RUNNING, TODAY, recorded_facts, with_kernels


def _items(store: Path, facts: dict[str, Any]) -> dict[str, dict[str, Any]]:
    domain, problem = VulnMatcher(store, max_age_days=7).match(facts, TODAY)
    assert problem is None and domain is not None
    return {item["cve"]: item for item in domain["items"]}


def test_states_on_the_recorded_debian_12_host(store: Path) -> None:
    items = _items(store, recorded_facts())
    assert {cve: item["state"] for cve, item in items.items()} == {
        "CVE-2099-1001": "fix_available",  # openssl, fix in bookworm-security
        "CVE-2099-1003": "fix_pending",  # glibc: fixed in the tracker, not in the archive
        "CVE-2099-1005": "fix_available",  # vim with epoch 2
        "CVE-2099-1006": "affected_no_fix",  # bash, no DSA (postponed)
        "CVE-2099-1008": "will_not_fix",  # perl, no DSA (ignored)
        "CVE-2099-1009": "affected_no_fix",  # libxml2, open
        "CVE-2099-1011": "end_of_life",  # tzdata
    }
    # CVE-2099-1002 and -1004 are fixed in the installed versions (openssh deb12u10 >
    # deb12u7 numerically, a string comparison would say otherwise); -1007 is
    # undetermined, -1010 never affected bookworm, TEMP- ids are not CVEs.


def test_source_names_and_versions_not_binary_ones(store: Path) -> None:
    items = _items(store, recorded_facts())
    openssl = items["CVE-2099-1001"]
    assert openssl["package"] == "openssl"
    assert {"libssl3", "openssl"} <= set(openssl["binaries"])
    assert openssl["installed_version"] == "3.0.22-1~deb12u2"
    assert openssl["fixed_version"] == "3.0.23-1~deb12u1"
    assert (openssl["severity"], openssl["kev"], openssl["epss"]) == ("high", True, 0.94321)
    bash = items["CVE-2099-1006"]
    # bash 5.2.15-2+b8 is a binNMU: the source version is what the tracker knows
    assert bash["installed_version"] == "5.2.15-2"
    assert (bash["no_dsa"], bash["severity"], bash["kev"]) == (True, "negligible", False)
    assert items["CVE-2099-1005"]["installed_version"] == "2:9.0.1378-2+deb12u2"


def test_only_the_running_kernel_image_is_matched(store: Path) -> None:
    # As recorded: the running kernel is not a Debian package, and linux-libc-dev
    # (source linux) is headers for user space: no kernel item at all.
    domain, _ = VulnMatcher(store, 7).match(recorded_facts(), TODAY)
    assert domain is not None and domain["running_kernel_package"] is None
    assert "CVE-2099-1012" not in {i["cve"] for i in domain["items"]}
    items = _items(store, with_kernels(recorded_facts()))
    kernel = items["CVE-2099-1012"]
    assert kernel["package"] == "linux"  # linux-signed-amd64 is the linux source
    assert kernel["binaries"] == [f"linux-image-{RUNNING}"]  # not the old 6.1.0-28 image
    assert (kernel["installed_version"], kernel["state"]) == ("6.1.187-1", "fix_available")


def test_old_installed_kernel_alone_is_not_reported(store: Path) -> None:
    facts = with_kernels(recorded_facts())
    facts["host"]["kernel"]["release"] = "6.1.0-99-amd64"  # neither image runs
    domain, _ = VulnMatcher(store, 7).match(facts, TODAY)
    assert domain is not None and domain["running_kernel_package"] is None
    assert "CVE-2099-1012" not in {i["cve"] for i in domain["items"]}


def test_no_store_stale_store_and_uncovered_release_are_errors(store: Path, tmp_path: Path) -> None:
    facts = recorded_facts()
    absent = VulnMatcher(tmp_path / "none.sqlite", 7).enrich(facts, TODAY)
    assert "vulnerabilities" not in absent
    assert absent["errors"][-1]["domain"] == "vulnerabilities"
    assert "vulndb import" in absent["errors"][-1]["reason"]
    stale = VulnMatcher(store, 0.5).enrich(facts, TODAY)  # fetched the day before
    assert "vulnerabilities" not in stale and stale["errors"][-1]["reason"].startswith("stale:")
    rocky = recorded_facts()
    rocky["host"]["os"].update(id="rocky", version_codename=None)
    domain, problem = VulnMatcher(store, 7).match(rocky, TODAY)
    assert domain is None and problem is not None and problem.kind == "unsupported"


def test_an_agent_supplied_domain_is_replaced(store: Path) -> None:
    facts = recorded_facts()
    facts["vulnerabilities"] = {"count": 0, "items": []}  # a lying agent
    enriched = VulnMatcher(store, 7).enrich(facts, TODAY)
    assert enriched["vulnerabilities"]["count"] == 7


def test_one_item_per_cve_and_source_at_the_older_version(store: Path) -> None:
    facts = recorded_facts()
    for package in facts["packages"]["items"]:
        if package["name"] == "libssl-dev":  # a half-finished upgrade: openssl at two versions
            package["version"] = package["source_version"] = "3.0.22-1~deb12u10"
    items = [i for i in VulnMatcher(store, 7).match(facts, TODAY)[0]["items"]  # type: ignore[index]
             if i["cve"] == "CVE-2099-1001"]  # fmt: skip
    assert len(items) == 1
    # ~deb12u2 < ~deb12u10 in dpkg order (a string comparison says the opposite)
    assert items[0]["installed_version"] == "3.0.22-1~deb12u2"
    assert {"libssl-dev", "libssl3", "openssl"} <= set(items[0]["binaries"])
