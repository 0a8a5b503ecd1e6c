"""`canhgac-agent discover` on an agency LAN of real network namespaces, beside
Debian's nmap over the same hosts and ports.

Everything runs inside namespaces this test creates: the scanner is one of them, so
no packet can reach any other network. They are removed afterwards, also on failure.
"""

from __future__ import annotations

import json
import subprocess
import time
import xml.etree.ElementTree as ET  # nmap's own output, produced by this test
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.agent.discovery.netlan import HostSpec, Lan, lan
from tests.agent.discovery.unprivileged import unprivileged_agent
from tests.support import require_root, require_tool

pytestmark = pytest.mark.integration

AGENT = str(Path(__file__).resolve().parents[3] / ".venv" / "bin" / "canhgac-agent")
PORTS = (23, 443, 445, 3306, 5432, 8080)
SPECS = (
    HostSpec("tls", "00:50:56:aa:bb:01", listen=(443,), tls=(443,)),  # a VMware OUI
    HostSpec("telnet", "02:00:00:00:00:12", listen=(23,)),
    HostSpec("smb", "02:00:00:00:00:13", listen=(445,)),
    HostSpec("db", "02:00:00:00:00:14", listen=(5432,)),
    HostSpec("walled", "02:00:00:00:00:15", listen=(3306,), drop=(3306,)),
    HostSpec("quiet", "02:00:00:00:00:16"),
)


def expected_states(spec: HostSpec) -> dict[int, str]:
    return {
        p: "filtered" if p in spec.drop else "open" if p in spec.listen else "closed" for p in PORTS
    }


@pytest.fixture(scope="module")
def agency_lan(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lan]:
    require_root()
    for tool in ("ip", "nft", "nmap", "setpriv"):
        require_tool(tool)
    with lan(SPECS, tmp_path_factory.mktemp("lan")) as net:
        yield net


def discover(net: Lan, *args: str, user: str | None = None) -> subprocess.CompletedProcess[str]:
    argv = [AGENT, "discover", "--lang", "en", *args]
    if user is not None:
        # Not the venv's script: the user may not read this checkout (unprivileged.py).
        argv = [*unprivileged_agent(), *argv[1:]]
        argv = ["setpriv", f"--reuid={user}", f"--regid={user}", "--clear-groups", *argv]
    return subprocess.run(net.exec(*argv), capture_output=True, text=True, timeout=180, check=False)


def scan_json(net: Lan, *, user: str | None = None) -> dict[str, Any]:
    ports = ",".join(str(p) for p in PORTS)
    done = discover(net, "--subnet", str(net.subnet), "--ports", ports, "--format", "json",
                    user=user)  # fmt: skip
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def nmap_hosts(net: Lan, *args: str) -> dict[str, dict[int, str]]:
    done = subprocess.run(
        net.exec("nmap", "-n", "-oX", "-", *args), capture_output=True, text=True, timeout=300,
        check=True,
    )  # fmt: skip
    root = ET.fromstring(done.stdout)  # nmap XML of this run
    hosts: dict[str, dict[int, str]] = {}
    for host in root.iter("host"):
        if host.find("status").get("state") != "up":  # type: ignore[union-attr]
            continue
        ip = next(a.get("addr") for a in host.iter("address") if a.get("addrtype") == "ipv4")
        assert ip is not None
        hosts[ip] = {
            int(p.get("portid", "0")): p.find("state").get("state", "")  # type: ignore[union-attr]
            for p in host.iter("port")
        }
    return hosts


def test_discover_finds_every_host_with_its_mac_and_port_states(agency_lan: Lan) -> None:
    result = scan_json(agency_lan)
    assert result["port_method"] == "syn"
    assert result["notes"] == []
    found = {d["ip"]: d for d in result["devices"]}
    assert set(found) == {ip for ip, _ in agency_lan.hosts.values()}  # not the scanner
    for ip, spec in agency_lan.hosts.values():
        device = found[ip]
        assert device["mac"] == spec.mac
        assert device["found_by"] == "arp"
        assert {p["port"]: p["state"] for p in device["ports"]} == expected_states(spec), spec
    tls = found[agency_lan.ip_of("tls")]
    assert "vmware" in tls["vendor"].lower()  # from the OUI table
    assert found[agency_lan.ip_of("quiet")]["vendor"] == ""  # locally administered
    https = next(p for p in tls["ports"] if p["port"] == 443)
    assert (https["service"], https["reason"], https["protocol"]) == ("https", "syn-ack", "tcp")
    walled = next(p for p in found[agency_lan.ip_of("walled")]["ports"] if p["port"] == 3306)
    assert walled["reason"] == "no-response"


def test_nmap_agrees_on_hosts_and_open_ports(agency_lan: Lan) -> None:
    ours = {d["ip"]: d for d in scan_json(agency_lan)["devices"]}
    swept = nmap_hosts(agency_lan, "-sn", str(agency_lan.subnet))
    swept.pop(agency_lan.scanner_ip, None)  # nmap lists the scanning host itself
    assert set(swept) == set(ours)
    ports = ",".join(str(p) for p in PORTS)
    probed = nmap_hosts(agency_lan, "-sS", "-Pn", "-p", ports, *sorted(ours))
    for ip, device in ours.items():
        mine = {p["port"]: p["state"] for p in device["ports"]}
        theirs = probed[ip]
        assert {p for p, s in theirs.items() if s == "open"} == {
            p for p, s in mine.items() if s == "open"
        }, ip
        # every port nmap names individually has the same state in ours
        assert {p: mine[p] for p in theirs} == theirs, ip


def test_without_raw_sockets_connect_is_used_and_said(agency_lan: Lan) -> None:
    result = scan_json(agency_lan, user="65534")
    assert result["port_method"] == "connect"
    assert any("raw sockets not permitted" in note for note in result["notes"])
    found = {d["ip"]: d for d in result["devices"]}
    # a host is seen when a port answers (open or refused): all but none here
    assert set(found) == {ip for ip, _ in agency_lan.hosts.values()}
    for ip, spec in agency_lan.hosts.values():
        assert {p["port"]: p["state"] for p in found[ip]["ports"]} == expected_states(spec)
        assert found[ip]["mac"] == spec.mac  # from the neighbour table
        assert found[ip]["found_by"] == "connect"


def test_the_connect_note_is_worded_in_each_language(agency_lan: Lan) -> None:
    ports = ",".join(str(p) for p in PORTS)
    english = discover(agency_lan, "--ports", ports, user="65534")
    assert english.returncode == 0, english.stderr
    assert "Note: TCP connect used instead of ARP and SYN: raw sockets not permitted" in (
        english.stderr
    )
    done = subprocess.run(
        agency_lan.exec("setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                        *unprivileged_agent(), "discover", "--ports", ports, "--lang", "vi"),
        capture_output=True, text=True, timeout=180, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    # Only the Vietnamese framing: the system's English reason stays in the JSON notes.
    assert done.stderr.strip() == (
        "Lưu ý: dò bằng kết nối TCP thay cho ARP và SYN vì tác tử không có quyền"
        " gửi gói tin thô (cần quyền root hoặc CAP_NET_RAW)."
    )
    assert "CỔNG MỞ" in done.stdout and "23/telnet" in done.stdout


def test_dry_run_lists_the_plan_and_sends_nothing(agency_lan: Lan) -> None:
    # earlier scans filled the neighbour table: start from an empty one
    subprocess.run(["ip", "-n", agency_lan.scanner, "neigh", "flush", "all"], check=True)
    done = discover(agency_lan, "--dry-run", "--format", "json", "--ports", "23,445")
    assert done.returncode == 0, done.stderr
    plan = json.loads(done.stdout)
    (target,) = plan["targets"]
    assert target["subnet"] == str(agency_lan.subnet)  # the attached subnet by default
    assert len(target["hosts"]) == 253 and agency_lan.scanner_ip not in target["hosts"]
    assert plan["ports"] == [23, 445]
    neighbours = subprocess.run(
        ["ip", "-n", agency_lan.scanner, "neigh", "show"], capture_output=True, text=True,
        check=True,
    )  # fmt: skip
    assert neighbours.stdout.strip() == ""  # no ARP was sent


def test_subnets_outside_the_lan_or_public_are_refused(agency_lan: Lan) -> None:
    for subnet, words in (
        ("10.250.250.0/24", "not inside an attached subnet"),
        ("8.8.8.0/24", "public range"),
        ("10.0.0.0/8", "more than max_hosts"),
    ):
        done = discover(agency_lan, "--subnet", subnet)
        assert done.returncode == 2, done.stdout
        assert words in done.stderr


def test_the_table_names_open_and_filtered_ports_in_each_language(agency_lan: Lan) -> None:
    ports = ",".join(str(p) for p in PORTS)
    for lang, header, filtered in (
        ("en", "OPEN PORTS", "filtered: 3306"),
        ("vi", "CỔNG MỞ", "bị lọc: 3306"),
    ):
        done = subprocess.run(
            agency_lan.exec(AGENT, "discover", "--ports", ports, "--lang", lang),
            capture_output=True, text=True, timeout=180, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        lines = done.stdout.splitlines()
        assert header in lines[1]
        row = {line.split()[0]: line for line in lines[2:]}
        assert "443/https" in row[agency_lan.ip_of("tls")]
        assert "23/telnet" in row[agency_lan.ip_of("telnet")]
        assert filtered in row[agency_lan.ip_of("walled")]
        assert len(row) == len(SPECS)


def test_collect_has_the_discovery_domain_only_when_enabled(
    agency_lan: Lan, tmp_path: Path, validate: Callable[[Any], Any]
) -> None:
    def collect(enabled: bool) -> dict[str, Any]:
        config = tmp_path / f"agent-{enabled}.yaml"
        ports = list(PORTS)
        config.write_text(
            json.dumps({"agent": {"discovery": {"enabled": enabled, "ports": ports}}})
        )
        done = subprocess.run(
            agency_lan.exec(AGENT, "collect", "--no-state", "--config", str(config)),
            capture_output=True, text=True, timeout=300, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        document: dict[str, Any] = json.loads(done.stdout)
        validate(document)
        return document

    assert "discovery" not in collect(False)
    document = collect(True)
    assert not [e for e in document["errors"] if e["domain"] == "discovery"]
    domain = document["discovery"]
    assert domain["subnets"] == [str(agency_lan.subnet)] and domain["port_method"] == "syn"
    found = {d["ip"]: d for d in domain["devices"]}
    assert set(found) == {ip for ip, _ in agency_lan.hosts.values()}
    for ip, spec in agency_lan.hosts.values():  # the facts keep open ports only
        opened = {p for p, s in expected_states(spec).items() if s == "open"}
        assert {p["port"] for p in found[ip]["ports"]} == opened
        assert found[ip]["mac"] == spec.mac
    # The same open ports listed flat for the rules: one item per (device, port).
    assert domain["complete"] is True
    assert sorted((o["ip"], o["port"], o["mac"]) for o in domain["open_ports"]) == sorted(
        (ip, port, spec.mac)
        for ip, spec in agency_lan.hosts.values()
        for port, state in expected_states(spec).items()
        if state == "open"
    )


def test_collect_keeps_the_sweep_between_runs(agency_lan: Lan, tmp_path: Path) -> None:
    """`collect` with a state directory: the first run sweeps, the next reports the kept
    sweep (same swept_at), other ports sweep again and keep each device's first seen."""

    def collect(ports: list[int]) -> dict[str, Any]:
        config = tmp_path / "agent.yaml"
        discovery = {"enabled": True, "ports": ports, "interval_seconds": 3600}
        config.write_text(json.dumps({"agent": {"discovery": discovery}}))
        done = subprocess.run(
            agency_lan.exec(
                AGENT, "collect", "--config", str(config), "--state-dir", str(tmp_path / "state")
            ),
            capture_output=True, text=True, timeout=300, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        domain: dict[str, Any] = json.loads(done.stdout)["discovery"]
        return domain

    first = collect([23, 445])
    assert len(first["devices"]) == len(SPECS)
    assert all(d["first_seen"] == d["last_seen"] == first["swept_at"] for d in first["devices"])
    assert collect([23, 445]) == first  # within the interval: the kept sweep
    time.sleep(1.1)  # the next sweep's second differs
    again = collect([23, 445, 5432])
    assert again["swept_at"] > first["swept_at"]
    assert {d["ip"]: d["first_seen"] for d in again["devices"]} == {
        d["ip"]: first["swept_at"] for d in first["devices"]
    }
    assert all(d["last_seen"] == again["swept_at"] for d in again["devices"])
    assert sorted((o["ip"], o["port"]) for o in again["open_ports"]) == sorted(
        [
            (agency_lan.ip_of(name), port)
            for name, port in (("telnet", 23), ("smb", 445), ("db", 5432))
        ]
    )


def test_the_packets_per_second_cap_bounds_the_sweep(agency_lan: Lan, tmp_path: Path) -> None:
    config = tmp_path / "slow.yaml"
    # short waits, so the sending rate, not the waiting, sets the duration (an uncapped
    # run takes about 2 s here, process start included)
    slow = {"packets_per_second": 100, "timeout_seconds": 0.2}
    config.write_text(json.dumps({"agent": {"discovery": slow}}))
    started = time.monotonic()
    done = discover(agency_lan, "--config", str(config), "--ports", "23", "--format", "json")
    elapsed = time.monotonic() - started
    assert done.returncode == 0, done.stderr
    assert len(json.loads(done.stdout)["devices"]) == len(SPECS)
    # 253 ARP requests, then 247 again (the silent addresses), at most 100 per second
    assert elapsed >= (253 + 247) / 100
