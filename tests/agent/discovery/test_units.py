"""Discovery's pure parts: subnet safety, configuration, OUI table, facts shape, and
the agent's import staying scapy-free."""

from __future__ import annotations

from collections.abc import Callable
from ipaddress import IPv4Interface
from pathlib import Path
from typing import Any

import fastjsonschema
import pytest
from click.testing import CliRunner

from agent.cli.main import main
from agent.config import load_config
from agent.discovery.config import DEFAULT_PORTS, DiscoveryConfig, parse_discovery, parse_ports
from agent.discovery.errors import DiscoveryConfigError, RefusalKind, SubnetRefusedError
from agent.discovery.facts import incomplete_reason, result_dict
from agent.discovery.model import Device, Method, Port, PortState, ScanResult
from agent.discovery.oui import parse_manuf, table_lookup, vendor_lookup, vendor_of
from agent.discovery.targets import Attached, make_plan
from tests.test_layout import run_guarded

LAN = (
    Attached("eth0", IPv4Interface("10.1.2.5/24")),
    Attached("eth1", IPv4Interface("192.168.8.1/22")),
)


def test_the_attached_subnets_are_the_default_without_our_own_address() -> None:
    plan = make_plan([], DiscoveryConfig(), LAN)
    assert [str(t.network) for t in plan.targets] == ["10.1.2.0/24", "192.168.8.0/22"]
    first = plan.targets[0]
    assert len(first.hosts) == 253 and str(first.own_address) == "10.1.2.5"
    assert all(str(h) not in {"10.1.2.0", "10.1.2.5", "10.1.2.255"} for h in first.hosts)
    assert plan.ports == DEFAULT_PORTS and plan.host_count == 253 + 1021


def test_a_smaller_subnet_of_an_attached_one_is_allowed_on_its_interface() -> None:
    plan = make_plan(["192.168.9.0/28"], DiscoveryConfig(), LAN, ports=[22])
    (target,) = plan.targets
    assert target.interface == "eth1" and len(target.hosts) == 16 and plan.ports == (22,)


@pytest.mark.parametrize(
    ("subnet", "words"),
    [
        ("10.9.9.0/24", "not inside an attached subnet"),
        ("8.8.8.0/24", "public range"),
        ("10.0.0.0/8", "more than max_hosts"),
        ("127.0.0.0/24", "loopback"),
        ("fd00::/64", "IPv6"),
        ("10.1.2.0/33", "not a CIDR"),
    ],
)
def test_unsafe_subnets_are_refused_with_the_reason(subnet: str, words: str) -> None:
    with pytest.raises(SubnetRefusedError, match=words):
        make_plan([subnet], DiscoveryConfig(), LAN)


def test_refusals_carry_their_kind() -> None:
    with pytest.raises(SubnetRefusedError) as caught:
        make_plan(["8.8.8.0/24", "10.0.0.0/8", "10.9.9.0/24"], DiscoveryConfig(), LAN)
    kinds = [(r.subnet, r.kind) for r in caught.value.refusals]
    assert kinds == [
        ("8.8.8.0/24", RefusalKind.PUBLIC),
        ("10.0.0.0/8", RefusalKind.TOO_LARGE),
        ("10.9.9.0/24", RefusalKind.NOT_ATTACHED),
    ]
    assert (caught.value.refusals[1].size, caught.value.refusals[1].max_hosts) == (16777214, 1024)


def test_discover_words_refusals_in_each_language() -> None:
    # Refused before any packet is built: nothing is sent from this machine.
    subnets = ["--subnet", "8.8.8.0/24", "--subnet", "10.0.0.0/8", "--subnet", "fd00::/64",
               "--subnet", "10.1.2.0/33"]  # fmt: skip
    vi = CliRunner().invoke(main, ["discover", *subnets])
    assert vi.exit_code == 2, vi.output
    assert vi.stderr.splitlines() == [
        "Lỗi: không dò 8.8.8.0/24: dải địa chỉ công cộng (đặt agent.discovery.allow_public để"
        " được dò)",
        "Lỗi: không dò 10.0.0.0/8: 16.777.214 địa chỉ, nhiều hơn giới hạn max_hosts 1.024",
        "Lỗi: không dò fd00::/64: chưa hỗ trợ dò mạng IPv6",
        "Lỗi: không dò 10.1.2.0/33: không phải một mạng CIDR",
    ]
    en = CliRunner().invoke(main, ["discover", "--lang", "en", *subnets])
    assert en.exit_code == 2, en.output
    assert "Error: 8.8.8.0/24: public range" in en.stderr
    assert "10.0.0.0/8: 16777214 hosts, more than max_hosts 1024" in en.stderr


def test_a_public_attached_subnet_needs_allow_public() -> None:
    public = (
        Attached("eth0", IPv4Interface("203.0.113.0/24")),
        Attached("eth1", IPv4Interface("100.20.0.9/28")),
    )
    with pytest.raises(SubnetRefusedError, match="public range"):
        make_plan(["100.20.0.0/28"], DiscoveryConfig(), public)
    plan = make_plan(["100.20.0.0/28"], DiscoveryConfig(allow_public=True), public)
    assert len(plan.targets[0].hosts) == 13


def test_configuration_is_parsed_and_every_problem_reported() -> None:
    config = parse_discovery(
        {"enabled": True, "subnets": ["10.1.2.0/24"], "ports": [22, "8000-8002"],
         "packets_per_second": 50, "max_hosts": 256}
    )  # fmt: skip
    assert config.enabled and config.subnets == ("10.1.2.0/24",)
    assert config.ports == (22, 8000, 8001, 8002) and config.packets_per_second == 50
    with pytest.raises(DiscoveryConfigError) as caught:
        parse_discovery({"enabled": "yes", "ports": "0", "speed": 1, "max_hosts": -1})
    text = str(caught.value)
    for words in ("enabled must be true or false", "ports", "unknown key(s) speed", "max_hosts"):
        assert words in text
    assert parse_discovery(None) == DiscoveryConfig()
    with pytest.raises(DiscoveryConfigError, match="at most 1024 ports"):
        parse_ports("1-2000")


def test_vendor_from_a_wireshark_manuf_file_longest_prefix_first(tmp_path: Path) -> None:
    manuf = tmp_path / "manuf"
    manuf.write_text(
        "# comment\n00:50:56\tVMware\tVMware, Inc.\n"
        "00:1B:C5:00:00:00/36\tConverg\tConverging Systems Inc.\n00:1B:C5\tIEEE\n"
    )
    lookup = vendor_lookup((tmp_path / "absent", manuf), scapy_loaded=False)
    assert vendor_of("00:50:56:aa:bb:01", lookup) == "VMware, Inc."
    assert vendor_of("00:1b:c5:00:00:09", lookup) == "Converging Systems Inc."
    assert vendor_of("00:1b:c5:ff:00:09", lookup) == "IEEE"
    assert vendor_of("02:50:56:aa:bb:01", lookup) == ""  # locally administered
    assert vendor_of("00:11:22:33:44:55", lookup) == "" and vendor_of(None, lookup) == ""
    assert table_lookup(parse_manuf(""))("00:50:56:00:00:00") == ""
    empty = vendor_lookup((tmp_path / "absent",), scapy_loaded=False)
    assert vendor_of("00:50:56:aa:bb:01", empty) == ""  # no table on the machine


MINIMAL: dict[str, Any] = {
    "schema": "canhgac.facts/v1",
    "report_id": "0b7e5a3e-1c1d-4f5e-9a6b-1234567890ab",
    "agent_id": "a",
    "seq": 0,
    "collected_at": "2026-11-30T08:00:00Z",
    "agent_version": "0.1.0",
    "errors": [],
}


def test_facts_domain_fits_the_schema_and_keeps_only_open_ports(
    validate: Callable[[Any], Any],
) -> None:
    ports = (
        Port(23, PortState.OPEN, Method.SYN, "telnet", "syn-ack"),
        Port(445, PortState.FILTERED, Method.SYN, "microsoft-ds", "no-response"),
    )
    result = ScanResult(
        ("10.1.2.0/24",), (23, 445), Method.SYN,
        (Device("10.1.2.7", "00:50:56:aa:bb:01", "VMware, Inc.", Method.ARP, ports),),
        hosts_swept=253,
    )  # fmt: skip
    domain = result_dict(result)
    assert [p["port"] for p in domain["devices"][0]["ports"]] == [23]
    assert domain["open_port_count"] == 1 and domain["device_count"] == 1
    assert len(result_dict(result, all_ports=True)["devices"][0]["ports"]) == 2
    document: dict[str, Any] = {
        "schema": "canhgac.facts/v1",
        "report_id": "0b7e5a3e-1c1d-4f5e-9a6b-1234567890ab",
        "agent_id": "a",
        "seq": 0,
        "collected_at": "2026-11-30T08:00:00Z",
        "agent_version": "0.1.0",
        "discovery": domain,
        "errors": [],
    }
    validate(document)
    # The open ports listed flat, one item per (device, port), for the rules.
    assert domain["complete"] is True
    assert domain["open_ports"] == [
        {
            "ip": "10.1.2.7",
            "mac": "00:50:56:aa:bb:01",
            "vendor": "VMware, Inc.",
            "port": 23,
            "protocol": "tcp",
            "service": "telnet",
            "found_by": "syn",
        }
    ]
    document["discovery"]["devices"][0]["mac"] = "not a mac"
    with pytest.raises(fastjsonschema.JsonSchemaValueException, match=r"mac"):
        validate(document)


def test_a_cap_makes_the_domain_incomplete_and_open_ports_null(
    validate: Callable[[Any], Any],
) -> None:
    """More open ports than reported: the rules over `open_ports` must not pass on a
    part of the LAN, so the list is null and the reason goes to the errors entry."""
    ports = tuple(Port(p, PortState.OPEN, Method.SYN, "", "syn-ack") for p in range(1, 1025))
    devices = tuple(
        Device(f"10.1.{n // 250}.{n % 250 + 1}", None, "", Method.ARP, ports) for n in range(9)
    )
    result = ScanResult(("10.1.0.0/22",), tuple(range(1, 1025)), Method.SYN, devices)
    assert incomplete_reason(result) == "9216 open ports found, more than the 8192 reported"
    domain = result_dict(result)
    assert domain["complete"] is False and domain["open_ports"] is None
    assert domain["open_port_count"] == 9216
    validate({**MINIMAL, "discovery": domain})
    below = ScanResult(("10.1.0.0/22",), tuple(range(1, 1025)), Method.SYN, devices[:8])
    assert incomplete_reason(below) is None and len(result_dict(below)["open_ports"]) == 8192


def test_the_agent_and_a_dry_run_never_import_scapy() -> None:
    done = run_guarded(
        ["scapy"],
        "from agent.cli.main import main\n"
        "try:\n"
        "    main(['discover', '--dry-run', '--lang', 'en', '--subnet', '8.8.8.0/24'],\n"
        "         standalone_mode=False)\n"
        "except Exception as e:\n"
        "    print(type(e).__name__, e)\n"
        "import agent.app, agent.discovery.scan, agent.discovery.packets\n",
    )
    assert done.returncode == 0, done.stderr
    assert "public range" in done.stdout  # the command ran as far as the safety check


def test_the_example_configuration_has_a_valid_discovery_section() -> None:
    example = Path(__file__).resolve().parents[3] / "config.example.yaml"
    settings = parse_discovery(load_config(example).discovery)
    assert settings == DiscoveryConfig(enabled=False)  # off by default, defaults written out
