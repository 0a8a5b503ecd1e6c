"""Rocky and Alma updateinfo matched against the package list recorded on a Rocky Linux
9.4 host (tests/data/agent/commands/rpm-qa.rocky9.txt, parsed by the agent's own
parser): binary name and arch (noarch included, an i686-only fix not applied to
x86_64), rpm order with missing epochs = 0, the running kernel only, module streams
kept apart, the newest of two fixes of one CVE; the gzip'd repository file, and
refusals (truncated, entities, mixed distributions) that store nothing."""

from __future__ import annotations

import gzip
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from agent.collectors.platforms.rhel import parse_rpm_query
from server.cli.main import main
from server.vulns.errors import VulnDbError
from server.vulns.feeds.detect import read_feed
from server.vulns.feeds.updateinfo import fixed_package
from server.vulns.matching import VulnMatcher
from server.vulns.store import build_store, read_status
from tests.server.vulns.conftest import DATA, FETCHED, IMPORTED, TODAY

RPM_QA = DATA.parents[1] / "agent" / "commands" / "rpm-qa.rocky9.txt"
ROCKY = DATA / "updateinfo" / "rocky9-updateinfo.xml"
ALMA = DATA / "updateinfo" / "alma9-updateinfo.xml"
RUNNING = "5.14.0-427.13.1.el9_4.x86_64"


def _facts(distro: str = "rocky", extra: str = "") -> dict[str, Any]:
    text = RPM_QA.read_text("utf-8")
    # an older kernel left installed, not running
    text += "kernel-core\t5.14.0-362.8.1.el9_3\tx86_64\tkernel-5.14.0-362.8.1.el9_3.src.rpm\n"
    items = parse_rpm_query(text + extra)
    return {
        "host": {"os": {"id": distro, "version_id": "9.4"}, "kernel": {"release": RUNNING}},
        "packages": {"manager": "rpm", "count": len(items), "items": items},
    }


def _match(store: Path, facts: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    domain, problem = VulnMatcher(store, 7).match(facts, TODAY)
    assert problem is None and domain is not None
    return {(i["cve"], i["package"]): i for i in domain["items"]}


def test_rocky_updateinfo_on_a_recorded_rocky_host(tmp_path: Path) -> None:
    store = tmp_path / "vulndb.sqlite"
    feed = read_feed(ROCKY, FETCHED)
    assert (feed.name, feed.format) == ("rocky-updateinfo", "updateinfo-xml")
    build_store(store, [feed], IMPORTED)
    items = _match(store, _facts())
    assert {key: item["state"] for key, item in items.items()} == {
        # 1:3.0.7-27.el9 < 1:3.0.7-29.el9_4 (the newer of RLSA-0001 and RLSA-0010)
        ("CVE-2099-4001", "openssl-libs.x86_64"): "fix_available",
        ("CVE-2099-4010", "openssl-libs.x86_64"): "fix_available",
        ("CVE-2099-4002", "tzdata.noarch"): "fix_available",  # noarch
        ("CVE-2099-4003", "kernel-core.x86_64"): "fix_available",  # the running 427.13.1
        ("CVE-2099-4005", "bash.x86_64"): "fix_available",  # no epoch = 0: 0:5.1.8-10.el9_4
    }  # CVE-2099-4004: fixed below the running kernel, only the old 362.8.1 has it;
    # 4006: nginx 1:1.20.1-14.el9_2.1 is the fixed build (epoch 1 both sides);
    # 4007: a nginx:1.22 module build, the host's nginx is not from a module;
    # 4008: glibc i686 only, the host's glibc is x86_64; RLBA: a bug fix, no CVE
    openssl = items[("CVE-2099-4001", "openssl-libs.x86_64")]
    assert (openssl["fixed_version"], openssl["archive_version"]) == ("1:3.0.7-29.el9_4",) * 2
    assert (openssl["installed_version"], openssl["severity"]) == ("1:3.0.7-27.el9", "high")
    assert openssl["binaries"] == ["openssl-libs"]
    assert items[("CVE-2099-4002", "tzdata.noarch")]["severity"] == "medium"
    kernel = items[("CVE-2099-4003", "kernel-core.x86_64")]
    assert kernel["installed_version"] == "5.14.0-427.13.1.el9_4"
    assert items[("CVE-2099-4005", "bash.x86_64")]["fixed_version"] == "0:5.1.8-10.el9_4"


def test_a_module_build_matches_its_stream_only(tmp_path: Path) -> None:
    store = tmp_path / "vulndb.sqlite"
    build_store(store, [read_feed(ROCKY, FETCHED)], IMPORTED)
    module_nginx = "nginx-mod-stream\t1:1.22.1-3.module+el9.2.0+14931+1a1f8d4c\tx86_64\t"
    module_nginx += "nginx-1.22.1-3.module+el9.2.0+14931+1a1f8d4c.src.rpm\tnginx:1.22:9020:9\n"
    facts = _facts()
    facts["packages"]["items"] = [i for i in facts["packages"]["items"] if i["name"] != "nginx"]
    facts["packages"]["items"] += parse_rpm_query(
        module_nginx.replace("nginx-mod-stream", "nginx", 1)
    )
    items = _match(store, facts)
    module = items[("CVE-2099-4007", "nginx.x86_64@nginx:1.22")]
    assert (module["state"], module["fixed_version"]) == (
        "fix_available",
        "1:1.22.1-4.module+el9.2.0+14932+1a1f8d4c",
    )
    assert not [key for key in items if key[1] == "nginx.x86_64"]  # RLSA-0006 is not its stream


def test_alma_errata_match_alma_hosts_only(tmp_path: Path) -> None:
    store = tmp_path / "vulndb.sqlite"
    feeds = [read_feed(ALMA, FETCHED), read_feed(ROCKY, FETCHED)]
    assert [f.name for f in feeds] == ["alma-updateinfo", "rocky-updateinfo"]
    build_store(store, feeds, IMPORTED)
    items = _match(store, _facts("almalinux"))
    assert {key: item["state"] for key, item in items.items()} == {
        ("CVE-2099-4001", "openssl-libs.x86_64"): "fix_available"
    }
    assert items[("CVE-2099-4001", "openssl-libs.x86_64")]["fixed_version"] == "1:3.0.7-28.el9_4"
    # a release no feed covers is unsupported, never clean
    facts = _facts("almalinux")
    facts["host"]["os"]["version_id"] = "8.10"
    domain, problem = VulnMatcher(store, 7).match(facts, TODAY)
    assert domain is None and problem is not None
    assert (problem.kind, problem.reason) == ("unsupported", "no imported feed covers almalinux 8")


def test_the_repository_gzip_file_imports_through_the_cli(tmp_path: Path) -> None:
    store = tmp_path / "vulndb.sqlite"
    packed = tmp_path / "0123abcd-updateinfo.xml.gz"
    packed.write_bytes(gzip.compress(ROCKY.read_bytes()))
    result = CliRunner().invoke(main, ["vulndb", "import", "--store", str(store), str(packed)])
    assert result.exit_code == 0, result.output
    assert [(f.name, f.entries) for f in read_status(store)] == [
        ("rocky-updateinfo", 12)
    ]  # (package.arch, CVE) pairs


@pytest.mark.parametrize(
    ("mangle", "reason"),
    [
        (lambda raw: gzip.compress(raw)[:-40], "truncated gzip"),
        (lambda raw: raw[: len(raw) // 2], "not valid XML"),
        (
            lambda raw: raw.replace(
                b"<updates>", b'<!DOCTYPE updates [<!ENTITY x "y">]>\n<updates>', 1
            ),
            "DOCTYPE",
        ),
        (lambda raw: raw.replace(b"RLSA-2099:0002", b"ALSA-2099:0002", 1), "mixes Rocky"),
        (lambda raw: raw.replace(b'release="10.el9_4"', b'release="10"', 1), "no el<N> dist tag"),
    ],
)
def test_bad_updateinfo_is_refused_and_the_previous_store_stays(
    tmp_path: Path, mangle: Any, reason: str
) -> None:
    store = tmp_path / "vulndb.sqlite"
    build_store(store, [read_feed(ALMA, FETCHED)], IMPORTED)
    before = store.read_bytes()
    bad = tmp_path / "updateinfo.xml"
    bad.write_bytes(mangle(ROCKY.read_bytes()))
    with pytest.raises(VulnDbError, match=reason):
        read_feed(bad, FETCHED)
    result = CliRunner().invoke(main, ["vulndb", "import", "--store", str(store), str(bad)])
    # the reason itself is the error's (checked above); the CLI's wording is its own
    assert result.exit_code != 0, result.output
    assert store.read_bytes() == before


def test_alma_errata_json_matches_like_its_updateinfo(tmp_path: Path) -> None:
    errata = DATA / "updateinfo" / "alma9-errata.json"
    feed = read_feed(errata, FETCHED)
    assert (feed.name, feed.format) == ("alma-updateinfo", "alma-errata-json")
    # the nginx:1.22 module build is not stored: its stream is not named in this file
    assert sorted({a.package for a in feed.advisories}) == [
        "openssl-libs.i686",
        "openssl-libs.x86_64",
        "tzdata.noarch",
    ]
    store = tmp_path / "vulndb.sqlite"
    build_store(store, [feed], IMPORTED)
    items = _match(store, _facts("almalinux"))
    assert {key: item["state"] for key, item in items.items()} == {
        ("CVE-2099-4001", "openssl-libs.x86_64"): "fix_available",
        ("CVE-2099-4002", "tzdata.noarch"): "fix_available",
    }
    assert items[("CVE-2099-4001", "openssl-libs.x86_64")]["severity"] == "high"
    bad = tmp_path / "errata.json"
    bad.write_text(errata.read_text("utf-8").replace('"arch": "noarch"', '"arch": ""'), "utf-8")
    with pytest.raises(VulnDbError, match="lacks name, arch"):
        read_feed(bad, FETCHED)


@pytest.mark.parametrize(
    ("release", "major"),
    [("27.el9_4", "9"), ("4.module+el9.2.0+14932+1a1f8d4c", "9"), ("4.module_el8.6.0+3238", "8")],
)
def test_the_release_is_the_dist_tag_of_rocky_and_alma_builds(release: str, major: str) -> None:
    package = {"name": "php", "arch": "x86_64", "version": "7.4.19", "release": release}
    assert fixed_package(package, "", "here")[2] == major
