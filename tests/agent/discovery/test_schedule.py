"""Discovery on its own schedule (agent/discovery/schedule.py): a sweep at most every
interval, the last one kept in the state directory and reported in between, each
device's first and last seen across sweeps; and the `agent.discovery` settings.

`scan` is the seam the collector passes `run_scan` through: here it returns scan
results built in the test (and counts its calls), because the real sweep needs
network namespaces; the real sweep through the same path is in test_lan.py
(`test_collect_keeps_the_sweep_between_runs`).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from agent.cli.main import main
from agent.discovery.collector import discovery_collector
from agent.discovery.config import DiscoveryConfig, parse_discovery
from agent.discovery.errors import DiscoveryConfigError, DiscoveryError
from agent.discovery.model import Device, Method, Port, PortState, ScanResult
from agent.discovery.schedule import FORGET_AFTER, STATE_FILE, scheduled_sweep

T0 = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)
SETTINGS = DiscoveryConfig(enabled=True, interval_seconds=3600)
TELNET = Port(23, PortState.OPEN, Method.SYN, "telnet", "syn-ack")
NAS = Device("10.1.2.7", "00:11:32:aa:bb:cc", "Synology", Method.ARP, (TELNET,))
PRINTER = Device("10.1.2.9", "00:1b:a9:01:02:03", "", Method.ARP)


class Scans:
    """Returns the next prepared result (or raises it) and counts the sweeps."""

    def __init__(self, *results: tuple[Device, ...] | Exception) -> None:
        self.results = list(results)
        self.calls = 0

    def __call__(self) -> ScanResult:
        self.calls += 1
        result = self.results.pop(0)
        if isinstance(result, Exception):
            raise result
        return ScanResult(("10.1.2.0/24",), (23,), Method.SYN, result, hosts_swept=253)


def sweep(state: Path | None, scans: Scans, at: datetime, **settings: Any) -> dict[str, Any]:
    config = DiscoveryConfig(**{**SETTINGS.__dict__, **settings})
    return scheduled_sweep(config, state, scans, at).domain


def by_ip(domain: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {d["ip"]: d for d in domain["devices"]}


def test_the_stored_sweep_is_reported_until_the_interval_is_over(
    tmp_path: Path, validate: Callable[[Any], Any]
) -> None:
    scans = Scans((NAS,), (NAS, PRINTER))
    first = sweep(tmp_path, scans, T0)
    assert first["swept_at"] == "2026-11-30T08:00:00Z" and scans.calls == 1
    assert by_ip(first)["10.1.2.7"]["first_seen"] == by_ip(first)["10.1.2.7"]["last_seen"]
    validate({**document(), "discovery": first})

    # Within the hour: the same domain, no sweep.
    assert sweep(tmp_path, scans, T0 + timedelta(minutes=59)) == first and scans.calls == 1

    later = sweep(tmp_path, scans, T0 + timedelta(hours=1))
    assert scans.calls == 2 and later["swept_at"] == "2026-11-30T09:00:00Z"
    nas, printer = by_ip(later)["10.1.2.7"], by_ip(later)["10.1.2.9"]
    assert (nas["first_seen"], nas["last_seen"]) == (
        "2026-11-30T08:00:00Z",
        "2026-11-30T09:00:00Z",
    )
    assert printer["first_seen"] == "2026-11-30T09:00:00Z"  # new in this sweep
    assert later["open_ports"] == [
        {
            "ip": "10.1.2.7",
            "mac": "00:11:32:aa:bb:cc",
            "vendor": "Synology",
            "port": 23,
            "protocol": "tcp",
            "service": "telnet",
            "found_by": "syn",
        }
    ]
    validate({**document(), "discovery": later})


def test_a_device_that_comes_back_keeps_its_first_seen(tmp_path: Path) -> None:
    scans = Scans((NAS, PRINTER), (NAS,), (NAS, PRINTER), (NAS,), (NAS, PRINTER))
    sweep(tmp_path, scans, T0)
    gone = sweep(tmp_path, scans, T0 + timedelta(days=1))
    assert "10.1.2.9" not in by_ip(gone)
    back = sweep(tmp_path, scans, T0 + timedelta(days=2))
    assert by_ip(back)["10.1.2.9"]["first_seen"] == "2026-11-30T08:00:00Z"
    # Gone for longer than FORGET_AFTER: forgotten, new again when it returns.
    sweep(tmp_path, scans, T0 + timedelta(days=3))
    returned = T0 + timedelta(days=3) + FORGET_AFTER + timedelta(days=1)
    sweep(tmp_path, scans, returned)
    stored = json.loads((tmp_path / STATE_FILE).read_text())
    assert "mac:00:1b:a9:01:02:03" in stored["seen"]
    assert stored["seen"]["mac:00:1b:a9:01:02:03"][0] == returned.strftime("%Y-%m-%dT%H:%M:%SZ")


def test_other_settings_sweep_again_at_once(tmp_path: Path) -> None:
    scans = Scans((NAS,), (NAS,), (NAS,))
    sweep(tmp_path, scans, T0)
    sweep(tmp_path, scans, T0 + timedelta(minutes=1), ports=(23, 445))
    assert scans.calls == 2
    # The interval alone does not change what a sweep finds: no new sweep for it.
    sweep(tmp_path, scans, T0 + timedelta(minutes=2), ports=(23, 445), interval_seconds=7200)
    assert scans.calls == 2


def test_a_failed_sweep_raises_and_keeps_the_stored_one(tmp_path: Path) -> None:
    scans = Scans((NAS,), DiscoveryError("scan failed: Network is unreachable"), (PRINTER,))
    sweep(tmp_path, scans, T0)
    stored = (tmp_path / STATE_FILE).read_bytes()
    with pytest.raises(DiscoveryError, match="unreachable"):
        sweep(tmp_path, scans, T0 + timedelta(hours=2))
    assert (tmp_path / STATE_FILE).read_bytes() == stored
    # The next collection tries again (the failure was not stored as a sweep).
    assert list(by_ip(sweep(tmp_path, scans, T0 + timedelta(hours=2, minutes=5)))) == ["10.1.2.9"]


@pytest.mark.parametrize(
    "content",
    [
        b"{",
        b"[]",
        b'{"format": 99}',
        b"\xff\xfe",
        b"",
        b'{"format": 1, "settings": "x", "domain": {}, "seen": {"ip:10.1.2.7": [1]}}',
    ],
)
def test_an_unusable_state_file_means_a_new_sweep(tmp_path: Path, content: bytes) -> None:
    (tmp_path / STATE_FILE).write_bytes(content)
    scans = Scans((NAS,))
    assert by_ip(sweep(tmp_path, scans, T0))["10.1.2.7"]["first_seen"] == "2026-11-30T08:00:00Z"
    assert scans.calls == 1
    assert json.loads((tmp_path / STATE_FILE).read_text())["format"] == 1


def test_a_clock_set_back_sweeps_again(tmp_path: Path) -> None:
    scans = Scans((NAS,), (NAS,))
    sweep(tmp_path, scans, T0)
    sweep(tmp_path, scans, T0 - timedelta(hours=1))
    assert scans.calls == 2


def test_without_a_state_directory_every_call_sweeps(tmp_path: Path) -> None:
    scans = Scans((NAS,), (NAS,))
    sweep(None, scans, T0)
    sweep(None, scans, T0 + timedelta(seconds=1))
    assert scans.calls == 2 and list(tmp_path.iterdir()) == []


def test_the_collector_reports_a_capped_sweep_as_an_issue(tmp_path: Path) -> None:
    ports = tuple(Port(p, PortState.OPEN, Method.SYN, "", "syn-ack") for p in range(1, 1025))
    many = tuple(Device(f"10.1.2.{n}", None, "", Method.ARP, ports) for n in range(1, 10))
    (tmp_path / STATE_FILE).write_text(
        json.dumps(
            {
                "format": 1,
                "settings": "x",
                "domain": {"swept_at": "2026-11-30T08:00:00Z"},
                "seen": {},
            }
        )
    )
    domain = sweep(tmp_path, Scans(many), T0)
    assert domain["complete"] is False and domain["open_ports"] is None
    # The collector reads the stored (capped) sweep back and says why it is partial.
    collected = discovery_collector(SETTINGS, tmp_path, lambda: T0 + timedelta(minutes=5))(
        None  # type: ignore[arg-type]  # the context is not used by this collector
    )
    assert collected.data == domain
    assert [(i.kind.value, i.reason) for i in collected.issues] == [
        ("failed", "9216 open ports found, more than the 8192 reported")
    ]


def document() -> dict[str, Any]:
    return {
        "schema": "canhgac.facts/v1",
        "report_id": "0b7e5a3e-1c1d-4f5e-9a6b-1234567890ab",
        "agent_id": "a",
        "seq": 1,
        "collected_at": "2026-11-30T08:00:00Z",
        "agent_version": "0.1.0",
        "errors": [],
    }


def test_interval_setting_is_checked() -> None:
    assert parse_discovery({}).interval_seconds == 86400
    assert parse_discovery({"interval_seconds": 3600}).interval_seconds == 3600
    with pytest.raises(DiscoveryConfigError) as caught:
        parse_discovery({"interval_seconds": 5, "ports": "70000", "colour": "red"})
    assert caught.value.problems == (
        "agent.discovery: unknown key(s) colour (known: enabled, subnets, ports, "
        "packets_per_second, max_hosts, allow_public, timeout_seconds, interval_seconds, "
        "routed_subnets)",
        "agent.discovery.ports: ports must be 1-65535 and ranges ascending: '70000'",
        "agent.discovery.interval_seconds must be at least 60",
    )


def test_config_check_lists_discovery_problems_and_exits_2(tmp_path: Path) -> None:
    path = tmp_path / "a.yaml"
    path.write_text("agent:\n  discovery:\n    enabled: yes please\n    interval_seconds: 0\n")
    result = CliRunner().invoke(main, ["config", "check", "--config", str(path), "--lang", "en"])
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [
        f"{path}: agent.discovery.enabled must be true or false",
        f"{path}: agent.discovery.interval_seconds must be a positive number",
        "Error: 2 problem(s)",
    ]


def test_config_check_names_the_sweep_interval_in_both_languages(tmp_path: Path) -> None:
    path = tmp_path / "a.yaml"
    path.write_text("agent:\n  discovery: {enabled: true, interval_seconds: 43200.5}\n")
    vi = CliRunner().invoke(main, ["config", "check", "--config", str(path)])
    en = CliRunner().invoke(main, ["config", "check", "--config", str(path), "--lang", "en"])
    assert (vi.exit_code, en.exit_code) == (0, 0), vi.output + en.output
    assert vi.stdout.endswith("; dò tìm thiết bị mạng nội bộ mỗi 43200,5 giây\n")
    assert en.stdout.endswith("; LAN discovery every 43200.5 s\n")
