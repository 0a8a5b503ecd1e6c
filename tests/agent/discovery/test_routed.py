"""Routed subnets: `canhgac-agent discover` sweeps a subnet behind a router by ICMP echo
and TCP probes, in network namespaces (scanner, router, a switch with four hosts),
beside Debian's nmap over the same subnet.

The scanner's only way out is the router namespace this test creates; every namespace
is removed afterwards, also on failure.
"""

from __future__ import annotations

import ipaddress
import json
import os
import secrets
import subprocess
import tempfile
import xml.etree.ElementTree as ET  # nmap's own output, produced by this test
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.agent.discovery.netlan import HostSpec, drop_input, listener, remove
from tests.agent.discovery.unprivileged import unprivileged_agent
from tests.support import require_root, require_tool

pytestmark = pytest.mark.integration

AGENT = str(Path(__file__).resolve().parents[3] / ".venv" / "bin" / "canhgac-agent")
PORTS = (23, 445, 3306, 5432)
HOSTS = (  # (spec, drop ICMP echo requests)
    (HostSpec("telnet", "02:00:00:00:01:11", listen=(23,)), False),
    (HostSpec("smb", "02:00:00:00:01:12", listen=(445,)), False),
    (HostSpec("quiet", "02:00:00:00:01:13"), False),
    (HostSpec("noping", "02:00:00:00:01:14", listen=(3306,)), True),
)


@dataclass
class Routed:
    scanner: str
    lan: ipaddress.IPv4Network  # the scanner's own subnet (scanner .2, router .1)
    far: ipaddress.IPv4Network  # behind the router (router .1, hosts .11 ...)
    hosts: dict[str, str]  # name -> ip

    def exec(self, *argv: str) -> list[str]:
        return ["ip", "netns", "exec", self.scanner, *argv]


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True, timeout=30)


@contextmanager
def routed_lan(workdir: Path) -> Iterator[Routed]:
    prefix = f"cr{os.getpid()}x{secrets.token_hex(3)}"
    second = secrets.randbelow(200) + 20
    lan = ipaddress.IPv4Network(f"10.{second}.1.0/24")
    far = ipaddress.IPv4Network(f"10.{second}.2.0/24")
    scanner, router, switch = f"{prefix}-scan", f"{prefix}-rt", f"{prefix}-sw"
    made: list[str] = []
    procs: list[subprocess.Popen[str]] = []
    net = Routed(scanner, lan, far, {})
    try:
        for ns in (scanner, router, switch):
            _ip("netns", "add", ns)
            made.append(ns)
            _ip("-n", ns, "link", "set", "lo", "up")
        _ip("-n", router, "link", "add", "lan0", "type", "veth", "peer", "name", "eth0",
            "netns", scanner)  # fmt: skip
        _ip("-n", scanner, "addr", "add", f"10.{second}.1.2/24", "dev", "eth0")
        _ip("-n", scanner, "link", "set", "eth0", "up")
        _ip("-n", scanner, "route", "add", str(far), "via", f"10.{second}.1.1")
        _ip("-n", router, "addr", "add", f"10.{second}.1.1/24", "dev", "lan0")
        _ip("-n", router, "link", "set", "lan0", "up")
        _ip("-n", switch, "link", "add", "br0", "type", "bridge")
        _ip("-n", switch, "link", "set", "br0", "up")
        _ip("-n", switch, "link", "add", "v0", "type", "veth", "peer", "name", "wan0",
            "netns", router)  # fmt: skip
        _ip("-n", switch, "link", "set", "v0", "master", "br0", "up")
        _ip("-n", router, "addr", "add", f"10.{second}.2.1/24", "dev", "wan0")
        _ip("-n", router, "link", "set", "wan0", "up")
        subprocess.run(["ip", "netns", "exec", router, "sysctl", "-qw", "net.ipv4.ip_forward=1"],
                       check=True, capture_output=True, timeout=30)  # fmt: skip
        for n, (spec, no_ping) in enumerate(HOSTS, start=1):
            ns, ip = f"{prefix}-{spec.name}", f"10.{second}.2.{10 + n}"
            _ip("netns", "add", ns)
            made.append(ns)
            _ip("-n", switch, "link", "add", f"v{n}", "type", "veth", "peer", "name", "eth0",
                "netns", ns)  # fmt: skip
            _ip("-n", switch, "link", "set", f"v{n}", "master", "br0", "up")
            _ip("-n", ns, "link", "set", "eth0", "address", spec.mac)
            _ip("-n", ns, "addr", "add", f"{ip}/24", "dev", "eth0")
            _ip("-n", ns, "link", "set", "eth0", "up")
            _ip("-n", ns, "link", "set", "lo", "up")
            _ip("-n", ns, "route", "add", "default", "via", f"10.{second}.2.1")
            net.hosts[spec.name] = ip
            if no_ping:
                drop_input(ns, "icmp type echo-request")
            if spec.listen:
                procs.append(listener(ns, spec, workdir))
        yield net
    finally:
        remove(procs, made)


@pytest.fixture(scope="module")
def routed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Routed]:
    require_root()
    for tool in ("ip", "nft", "nmap", "setpriv", "sysctl"):
        require_tool(tool)
    with routed_lan(tmp_path_factory.mktemp("routed")) as net:
        yield net


def config_file(net: Routed, directory: Path, **extra: Any) -> Path:
    discovery = {
        "subnets": [str(net.lan)],
        "routed_subnets": [str(net.far)],
        "ports": list(PORTS),
        "timeout_seconds": 0.5,
        **extra,
    }
    path = directory / f"agent-{secrets.token_hex(2)}.yaml"
    path.write_text(json.dumps({"agent": {"discovery": discovery}}))
    return path


def discover(
    net: Routed, config: Path, *args: str, user: str | None = None
) -> subprocess.CompletedProcess[str]:
    argv = [AGENT, "discover", "--lang", "en", "--config", str(config), *args]
    if user is not None:
        # Not the venv's script: the user may not read this checkout (unprivileged.py).
        argv = [*unprivileged_agent(), *argv[1:]]
        argv = ["setpriv", f"--reuid={user}", f"--regid={user}", "--clear-groups", *argv]
    return subprocess.run(net.exec(*argv), capture_output=True, text=True, timeout=300, check=False)


def scan(net: Routed, tmp_path: Path, *, user: str | None = None) -> dict[str, dict[str, Any]]:
    done = discover(net, config_file(net, tmp_path), "--format", "json", user=user)
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout)
    assert result["subnets"] == [str(net.lan), str(net.far)]
    return {d["ip"]: d for d in result["devices"]}


def open_ports(device: dict[str, Any]) -> set[int]:
    return {p["port"] for p in device["ports"] if p["state"] == "open"}


def test_routed_hosts_are_found_by_icmp_and_tcp(routed: Routed, tmp_path: Path) -> None:
    found = scan(routed, tmp_path)
    gateway_lan, gateway_far = str(routed.lan[1]), str(routed.far[1])
    assert set(found) == {gateway_lan, gateway_far, *routed.hosts.values()}
    assert found[gateway_lan]["found_by"] == "arp"  # on the scanner's own link
    assert found[gateway_lan]["mac"] is not None
    for ip in (gateway_far, *routed.hosts.values()):
        assert found[ip]["mac"] is None, ip  # behind the router: no MAC is learnt
    by_name = {name: found[ip] for name, ip in routed.hosts.items()}
    assert {n: d["found_by"] for n, d in by_name.items()} == {
        "telnet": "icmp",
        "smb": "icmp",
        "quiet": "icmp",
        "noping": "tcp",  # echo requests dropped: found by the TCP probes
    }
    assert {n: open_ports(d) for n, d in by_name.items()} == {
        "telnet": {23},
        "smb": {445},
        "quiet": set(),
        "noping": {3306},
    }
    assert {p["port"]: p["state"] for p in by_name["quiet"]["ports"]} == dict.fromkeys(
        PORTS, "closed"
    )


def nmap(net: Routed, *args: str) -> dict[str, set[int]]:
    done = subprocess.run(net.exec("nmap", "-n", "-oX", "-", *args), capture_output=True,
                          text=True, timeout=300, check=True)  # fmt: skip
    hosts: dict[str, set[int]] = {}
    for host in ET.fromstring(done.stdout).iter("host"):  # nmap XML of this run
        if host.find("status").get("state") != "up":  # type: ignore[union-attr]
            continue
        ip = next(a.get("addr") for a in host.iter("address") if a.get("addrtype") == "ipv4")
        assert ip is not None
        hosts[ip] = {
            int(p.get("portid", "0"))
            for p in host.iter("port")
            if p.find("state").get("state") == "open"  # type: ignore[union-attr]
        }
    return hosts


def test_nmap_agrees_on_the_routed_hosts_and_open_ports(routed: Routed, tmp_path: Path) -> None:
    found = scan(routed, tmp_path)
    ports = ",".join(str(p) for p in PORTS)
    theirs = nmap(routed, "-sS", "-T4", "-p", ports, str(routed.far))
    ours = {ip: open_ports(d) for ip, d in found.items() if ipaddress.ip_address(ip) in routed.far}
    assert ours == theirs


def test_without_raw_sockets_connect_finds_the_same_routed_hosts(
    routed: Routed, tmp_path: Path
) -> None:
    # pytest's temporary directories are private to root: the config goes where the
    # unprivileged user can read it.
    with tempfile.TemporaryDirectory(prefix="canhgac-routed-") as shared:
        Path(shared).chmod(0o755)
        found = scan(routed, Path(shared), user="65534")
    far = {ip: d for ip, d in found.items() if ipaddress.ip_address(ip) in routed.far}
    assert set(far) == {str(routed.far[1]), *routed.hosts.values()}
    assert {d["found_by"] for d in far.values()} == {"connect"}
    assert open_ports(far[routed.hosts["noping"]]) == {3306}


def test_dry_run_lists_the_routed_subnet(routed: Routed, tmp_path: Path) -> None:
    done = discover(routed, config_file(routed, tmp_path), "--dry-run", "--format", "json")
    assert done.returncode == 0, done.stderr
    plan = json.loads(done.stdout)
    (entry,) = plan["routed"]
    assert entry["subnet"] == str(routed.far) and len(entry["hosts"]) == 254
    text = discover(routed, config_file(routed, tmp_path), "--dry-run").stdout
    assert f"subnet {routed.far} behind a router (ICMP echo, TCP 443 and 80)" in text


@pytest.mark.parametrize(
    ("routed_subnet", "reason"),
    [
        ("lan", "attached to this host: list it in subnets (swept by ARP)"),
        ("8.8.8.0/24", "public range (set agent.discovery.allow_public to sweep it)"),
        ("10.0.0.0/16", "65534 hosts, more than max_hosts 1024"),
    ],
)
def test_unsafe_routed_subnets_are_refused(
    routed: Routed, tmp_path: Path, routed_subnet: str, reason: str
) -> None:
    subnet = str(routed.lan) if routed_subnet == "lan" else routed_subnet
    config = config_file(routed, tmp_path, routed_subnets=[subnet])
    done = discover(routed, config, "--format", "json")
    assert done.returncode == 2, done.stdout + done.stderr
    assert f"{subnet}: {reason}" in done.stderr
