"""Red Hat CSAF VEX matched against the package list recorded on a Rocky Linux 9.4
host (tests/data/agent/commands/rpm-qa.rocky9.txt, parsed by the agent's own parser),
presented as RHEL 9.4 (Rocky rebuilds RHEL's sources with the same versions; Rocky's
own updateinfo feed is not read yet): rpm order with epochs, source RPM names, the
main stream only, the running kernel only, "will not fix"."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from click.testing import CliRunner

from agent.collectors.platforms.rhel import parse_rpm_query
from server.cli.main import main
from server.vulns.bundle import merge_feeds
from server.vulns.feeds.detect import read_feed
from server.vulns.matching import VulnMatcher
from server.vulns.store import build_store, read_status
from tests.server.vulns.conftest import DATA, FETCHED, IMPORTED, TODAY

RPM_QA = DATA.parents[1] / "agent" / "commands" / "rpm-qa.rocky9.txt"
RUNNING = "5.14.0-427.13.1.el9_4.x86_64"


def _rhel_facts() -> dict[str, Any]:
    text = RPM_QA.read_text("utf-8")
    # and an older kernel left installed, not running
    text += "kernel-core\t5.14.0-362.8.1.el9_3\tx86_64\tkernel-5.14.0-362.8.1.el9_3.src.rpm\n"
    items = parse_rpm_query(text)
    return {
        "host": {
            "os": {"id": "rhel", "name": "Red Hat Enterprise Linux", "version_id": "9.4"},
            "kernel": {"release": RUNNING},
        },
        "packages": {"manager": "rpm", "count": len(items), "items": items},
    }


def test_csaf_vex_on_a_recorded_rpm_host(tmp_path: Path) -> None:
    store = tmp_path / "vulndb.sqlite"
    feeds = [read_feed(p, FETCHED) for p in sorted((DATA / "redhat-csaf").glob("*.json"))]
    assert {f.format for f in feeds} == {"redhat-csaf-vex"}
    merged = merge_feeds(feeds)  # one CVE per file, one feed
    assert len(merged) == 1
    build_store(store, merged, IMPORTED)
    domain, problem = VulnMatcher(store, 7).match(_rhel_facts(), TODAY)
    assert problem is None and domain is not None
    items = {(i["cve"], i["package"]): i for i in domain["items"]}
    assert {key: item["state"] for key, item in items.items()} == {
        ("CVE-2099-3001", "openssl"): "fix_available",  # 1:3.0.7-27.el9 < 1:3.0.7-28.el9_4
        ("CVE-2099-3001", "tzdata"): "will_not_fix",
        ("CVE-2099-3002", "kernel"): "fix_available",  # the running 427.13.1 only
        ("CVE-2099-3002", "bash"): "affected_no_fix",
    }  # nginx 1:1.20.1-14.el9_2.1 is the fixed build; the EUS stream is not the host's
    openssl = items[("CVE-2099-3001", "openssl")]
    assert (openssl["fixed_version"], openssl["severity"]) == ("1:3.0.7-28.el9_4", "high")
    assert openssl["installed_version"] == "1:3.0.7-27.el9"
    kernel = items[("CVE-2099-3002", "kernel")]
    assert kernel["installed_version"] == "5.14.0-427.13.1.el9_4"
    assert domain["running_kernel_package"] == "kernel-core"


def test_out_of_support_scope_is_end_of_life_and_none_available_stays_open(
    tmp_path: Path,
) -> None:
    """Red Hat's `no_fix_planned` "Out of support scope" is end of life (never urgent),
    unlike its "Will not fix" (will_not_fix, above); `none_available` stays affected."""
    store = tmp_path / "vulndb.sqlite"
    feeds = [read_feed(p, FETCHED) for p in sorted((DATA / "redhat-csaf-eol").glob("*.json"))]
    build_store(store, merge_feeds(feeds), IMPORTED)
    domain, problem = VulnMatcher(store, 7).match(_rhel_facts(), TODAY)
    assert problem is None and domain is not None
    assert {(i["package"], i["state"], i["severity"]) for i in domain["items"]} == {
        ("openssh", "end_of_life", "medium"),  # openssh-server's source RPM
        ("glibc", "affected_no_fix", "medium"),
    }


def test_import_many_vex_files_as_one_feed(tmp_path: Path) -> None:
    store = tmp_path / "vulndb.sqlite"
    files = [str(p) for p in sorted((DATA / "redhat-csaf").glob("*.json"))]
    result = CliRunner().invoke(main, ["vulndb", "import", "--store", str(store), *files])
    assert result.exit_code == 0, result.output
    assert [(f.name, f.entries) for f in read_status(store)] == [
        ("redhat-csaf", 5)
    ]  # the EUS build is not stored


def test_a_module_build_is_never_fixed_by_a_non_module_advisory(tmp_path: Path) -> None:
    """CSAF's module builds are not read yet: a RHEL package from a module stream gets
    no item, rather than the main-stream nginx build's false "fix available"."""
    store = tmp_path / "vulndb.sqlite"
    feeds = [read_feed(p, FETCHED) for p in sorted((DATA / "redhat-csaf").glob("*.json"))]
    build_store(store, merge_feeds(feeds), IMPORTED)
    facts = _rhel_facts()
    old_nginx = "nginx\t1:1.20.0-1.el9\tx86_64\tnginx-1.20.0-1.el9.src.rpm"
    module_nginx = "\t".join(
        [
            "nginx",
            "1:1.20.0-1.module+el9.1.0+1111+aaaaaaaa",
            "x86_64",
            "nginx-1.20.0-1.module+el9.1.0+1111+aaaaaaaa.src.rpm",
            "nginx:1.20:9010020221101:rhel9",
        ]
    )
    matcher = VulnMatcher(store, 7)
    for line, expected in ((old_nginx, {"fix_available"}), (module_nginx, set())):
        facts["packages"]["items"] = [
            *(i for i in facts["packages"]["items"] if i["name"] != "nginx"),
            *parse_rpm_query(line + "\n"),
        ]
        domain, problem = matcher.match(facts, TODAY)
        assert problem is None and domain is not None
        states = {i["state"] for i in domain["items"] if i["package"].startswith("nginx")}
        assert states == expected, line


def test_module_streams_from_csaf_product_ids(tmp_path: Path) -> None:
    """Module builds in CSAF product ids ("<product>:<module>:<stream>:<version>:<context>:
    <srpm>" fixed, "<product>:<module>:<stream>/<name>" affected, as in Red Hat's files):
    each stream judged by its own advisory, the non-module nginx by the non-module fix."""
    store = tmp_path / "vulndb.sqlite"
    build_store(store, [read_feed(DATA / "redhat-csaf-modules" / "cve-2099-3003.json")], IMPORTED)
    matcher = VulnMatcher(store, 7)
    module_build = "1:1.22.1-3.module+el9.2.0+14931+1a1f8d4c"
    cases = {
        # the recorded non-module 1:1.20.1-14.el9_2.1 < 1:1.20.1-16.el9_4
        "": ("nginx", "fix_available", "1:1.20.1-16.el9_4"),
        # 1.22 is newer than the non-module fix: without streams it would be "fixed"
        "nginx:1.22:9020020230718154823:9": (
            "nginx@nginx:1.22",
            "fix_available",
            "1:1.22.1-5.module+el9.4.0+20001+3d7f5a1c",
        ),
        "nginx:1.24:9040020240601000000:9": ("nginx@nginx:1.24", "affected_no_fix", None),
    }
    for label, (package, state, fixed) in cases.items():
        facts = _rhel_facts()
        if label:
            line = f"nginx\t{module_build}\tx86_64\tnginx-{module_build[2:]}.src.rpm\t{label}\n"
            facts["packages"]["items"] = [
                *(i for i in facts["packages"]["items"] if i["name"] != "nginx"),
                *parse_rpm_query(line),
            ]
        domain, problem = matcher.match(facts, TODAY)
        assert problem is None and domain is not None
        found = [
            (i["package"], i["state"], i["fixed_version"])
            for i in domain["items"]
            if i["cve"] == "CVE-2099-3003"
        ]
        assert found == [(package, state, fixed)], label
