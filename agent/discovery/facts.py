"""The `discovery` domain of the facts document, and the same result for the
`discover` command's JSON output (which also lists closed and filtered ports).

Bounded as the schema bounds it: devices and ports are capped, strings clipped. Open
ports are also listed flat (`open_ports`, one item per device and port) because a
rule judges one list: one finding per (device, port). When a cap leaves devices or
open ports out, `complete` is false and `open_ports` null (`incomplete_reason` says
why, for the domain's `errors` entry), so the rules over it are in error, never a
pass on part of the LAN.
"""

from __future__ import annotations

from typing import Any

from agent.discovery.model import Device, Port, PortState, ScanResult

MAX_DEVICES = 4096
MAX_PORTS = 1024
MAX_NOTES = 16
MAX_TEXT = 256
MAX_OPEN_PORTS = 8192


def _clip(text: str) -> str:
    return text[:MAX_TEXT]


def port_dict(port: Port) -> dict[str, Any]:
    return {
        "port": port.port,
        "protocol": "tcp",
        "state": port.state.value,
        "service": _clip(port.service),
        "found_by": port.method.value,
        "reason": _clip(port.reason),
    }


def device_dict(device: Device, *, all_ports: bool) -> dict[str, Any]:
    ports = device.ports if all_ports else device.open_ports()
    return {
        "ip": device.ip,
        "mac": device.mac,
        "vendor": _clip(device.vendor),
        "found_by": device.found_by.value,
        "ports": [port_dict(p) for p in ports[:MAX_PORTS]],
    }


def open_port_item(device: Device, port: Port) -> dict[str, Any]:
    return {
        "ip": device.ip,
        "mac": device.mac,
        "vendor": _clip(device.vendor),
        "port": port.port,
        "protocol": "tcp",
        "service": _clip(port.service),
        "found_by": port.method.value,
    }


def incomplete_reason(result: ScanResult) -> str | None:
    """Why the domain cannot list every device and open port, or None."""
    opened = sum(len(d.open_ports()) for d in result.devices)
    if len(result.devices) > MAX_DEVICES:
        return f"{len(result.devices)} devices answered, only {MAX_DEVICES} are reported"
    if opened > MAX_OPEN_PORTS:
        return f"{opened} open ports found, more than the {MAX_OPEN_PORTS} reported"
    return None


def result_dict(result: ScanResult, *, all_ports: bool = False) -> dict[str, Any]:
    """The domain value: only open ports unless `all_ports` (the CLI's JSON)."""
    complete = incomplete_reason(result) is None
    return {
        "complete": complete,
        "open_ports": (
            [open_port_item(d, p) for d in result.devices for p in d.open_ports()]
            if complete
            else None
        ),
        "subnets": list(result.subnets),
        "ports_probed": list(result.ports[:MAX_PORTS]),
        "port_method": result.port_method.value if result.port_method else None,
        "hosts_swept": result.hosts_swept,
        "device_count": len(result.devices),
        "open_port_count": sum(
            1 for d in result.devices for p in d.ports if p.state is PortState.OPEN
        ),
        "notes": [_clip(n) for n in result.notes[:MAX_NOTES]],
        "devices": [device_dict(d, all_ports=all_ports) for d in result.devices[:MAX_DEVICES]],
    }
