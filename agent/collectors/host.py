"""The `host` domain: identity and inventory of the machine.

Kernel-provided values are read from files under `ctx.root` (/proc, /etc) so a fake
root tree can stand in for a host; psutil (through `ctx.system`) fills in what has
no file (network interfaces, architecture) or when a file is missing.
"""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path
from typing import Any

from agent.collectors.base import (
    CollectContext,
    Collected,
    CollectorError,
    ErrorKind,
    Issue,
    clip,
    read_bytes_at,
    read_file,
    read_file_or_issue,
    rfc3339_utc,
)
from agent.collectors.inventory import inventory
from agent.collectors.osrelease import DEFAULTS, family_of, id_like, parse_os_release
from agent.collectors.system import Nic

MACHINE_ID_PATH = "/etc/machine-id"
OS_RELEASE_PATHS = ("/etc/os-release", "/usr/lib/os-release")
_MACHINE_ID = re.compile(r"[0-9a-f]{32}")
_MAC = re.compile(r"[0-9a-f]{2}(:[0-9a-f]{2}){5}")
# Keys of /proc/cpuinfo naming the CPU model, by architecture (x86, arm, s390/mips).
_CPU_MODEL_KEYS = ("model name", "Model", "Processor", "cpu model", "cpu")
# cpuinfo has about 1.5 KiB per logical CPU; this bound fits thousands of them.
MAX_CPUINFO_BYTES = 8 * 1024 * 1024


def read_machine_id(root: Path) -> str:
    """The machine id (32 lowercase hex digits) of the host under `root`."""
    path = root / MACHINE_ID_PATH.lstrip("/")
    try:
        data = read_bytes_at(path, str(path), 4096)
    except CollectorError as e:
        raise CollectorError(e.kind, f"cannot read {e.reason}") from e
    if data is None:
        raise CollectorError(ErrorKind.FAILED, f"cannot read {path}: No such file or directory")
    value = data.decode("utf-8", errors="replace").strip().lower()
    # "uninitialized" (first boot) and all zeros are placeholders, not identities.
    if not _MACHINE_ID.fullmatch(value) or not value.strip("0"):
        raise CollectorError(ErrorKind.FAILED, f"{path} does not hold a valid machine id")
    return value


def collect_host(ctx: CollectContext) -> Collected:
    issues: list[Issue] = []
    uname = ctx.system.uname()
    hostname = _kernel_value(ctx, "hostname", issues) or uname.node or "localhost"
    try:
        fqdn = ctx.fqdn_resolver(hostname)
    except Exception as e:  # noqa: BLE001 - a broken resolver must not cost the host domain
        issues.append(Issue(ErrorKind.FAILED, f"fqdn: {type(e).__name__}: {e}"))
        fqdn = None
    try:
        machine_id: str | None = read_machine_id(ctx.root)
    except CollectorError as e:
        issues.append(Issue(e.kind, f"machine_id: {e.reason}"))
        machine_id = None

    data: dict[str, Any] = {
        "hostname": clip(hostname, 255),
        "fqdn": clip(fqdn, 255) if fqdn else None,
        "machine_id": machine_id,
        "os": _os(ctx, issues),
        "kernel": {
            "name": clip(_kernel_value(ctx, "ostype", issues) or uname.system, 64),
            "release": clip(_kernel_value(ctx, "osrelease", issues) or uname.release, 256),
            "version": clip(_kernel_value(ctx, "version", issues) or uname.version, 1024) or None,
        },
        "architecture": clip(uname.machine or "unknown", 64),
        "boot_time": _boot_time(ctx, issues),
        "cpu": _cpu(ctx, issues),
        "memory": _memory(ctx, issues),
    }
    data.update(inventory(ctx, issues))
    try:
        data["interfaces"] = [_interface(nic) for nic in ctx.system.interfaces()]
    except Exception as e:  # noqa: BLE001 - the rest of the host domain is still worth reporting
        issues.append(Issue(ErrorKind.FAILED, f"interfaces: {type(e).__name__}: {e}"))
    return Collected(data, tuple(issues))


def _kernel_value(ctx: CollectContext, name: str, issues: list[Issue]) -> str | None:
    """The first line of /proc/sys/kernel/`name`; None when absent or unreadable (the
    caller falls back to uname), an unreadable one also an entry in `issues`."""
    absolute = f"/proc/sys/kernel/{name}"
    label = "hostname" if name == "hostname" else "kernel"
    text = read_file_or_issue(ctx, absolute, issues, label, 64 * 1024) or ""
    line = text.split("\n", 1)[0].strip()
    return line or None


def _os(ctx: CollectContext, issues: list[Issue]) -> dict[str, Any]:
    values: dict[str, str] | None = None
    for candidate in OS_RELEASE_PATHS:
        try:
            text = read_file(ctx, candidate)
        except CollectorError as e:
            issues.append(Issue(e.kind, f"os: cannot read {e.reason}"))
            continue
        if text is not None:
            values = parse_os_release(text)
            break
    if values is None:
        issues.append(Issue(ErrorKind.FAILED, "os: no os-release file found"))
        values = {}
    merged = {**DEFAULTS, **{k: v for k, v in values.items() if v}}
    like = [clip(token, 64) for token in id_like(merged)][:16]
    os_id = clip(merged["ID"], 64)
    return {
        "id": os_id,
        "id_like": like,
        "name": clip(merged["NAME"], 256),
        "pretty_name": clip(merged["PRETTY_NAME"], 1024),
        "version_id": _optional(merged.get("VERSION_ID"), 64),
        "version_codename": _optional(merged.get("VERSION_CODENAME"), 64),
        "family": family_of(os_id, like),
    }


def _optional(value: str | None, limit: int) -> str | None:
    return clip(value, limit) if value else None


def _boot_time(ctx: CollectContext, issues: list[Issue]) -> str | None:
    """`btime` of /proc/stat (the timestamp `uptime_seconds` is derived from), else psutil's."""
    text = read_file_or_issue(ctx, "/proc/stat", issues, "boot_time") or ""
    for line in text.splitlines():
        if line.startswith("btime "):
            try:
                return rfc3339_utc(float(line.split()[1]))
            except (ValueError, IndexError):
                break  # malformed: psutil below reads the same value its own way
    try:
        booted = ctx.system.boot_time()
    except Exception:  # noqa: BLE001 - an unknown boot time is reported as null
        return None
    return rfc3339_utc(booted) if booted else None


def _cpu(ctx: CollectContext, issues: list[Issue]) -> dict[str, Any]:
    text = read_file_or_issue(ctx, "/proc/cpuinfo", issues, "cpu", MAX_CPUINFO_BYTES) or ""
    blocks = [_fields(block) for block in text.split("\n\n") if block.strip()]
    processors = [b for b in blocks if "processor" in b]
    logical: int | None = len(processors) or None
    physical: int | None = None
    if processors and all("physical id" in b and "core id" in b for b in processors):
        physical = len({(b["physical id"], b["core id"]) for b in processors})
    model = next(
        (b[key] for key in _CPU_MODEL_KEYS for b in blocks if b.get(key)),
        None,
    )
    if logical is None:
        logical = _safe_count(ctx, logical=True)
    if physical is None:
        physical = _safe_count(ctx, logical=False)
    return {"logical": logical, "physical": physical, "model": clip(model, 1024) if model else None}


def _fields(block: str) -> dict[str, str]:
    fields = {}
    for line in block.splitlines():
        key, sep, value = line.partition(":")
        if sep:
            fields[key.strip()] = value.strip()
    return fields


def _safe_count(ctx: CollectContext, *, logical: bool) -> int | None:
    try:
        return ctx.system.cpu_count(logical=logical)
    except Exception:  # noqa: BLE001 - an unknown count is reported as null
        return None


def _memory(ctx: CollectContext, issues: list[Issue]) -> dict[str, Any]:
    total: int | None = None
    swap: int | None = None
    text = read_file_or_issue(ctx, "/proc/meminfo", issues, "memory") or ""
    try:
        for line in text.splitlines():
            key, _, rest = line.partition(":")
            # /proc/meminfo says "kB" but means KiB.
            if key == "MemTotal":
                total = int(rest.split()[0]) * 1024
            elif key == "SwapTotal":
                swap = int(rest.split()[0]) * 1024
    except (ValueError, IndexError):
        total = swap = None  # malformed: psutil below
    if total is None:
        try:
            total, swap = ctx.system.memory()
        except Exception:  # noqa: BLE001 - unknown memory is left out, not fatal
            return {}
    return {"total_bytes": total, "swap_total_bytes": swap}


def _interface(nic: Nic) -> dict[str, Any]:
    mac = None
    addresses = []
    for addr in nic.addresses:
        if addr.kind == "link":
            candidate = addr.address.lower()
            mac = candidate if _MAC.fullmatch(candidate) else mac
        elif addr.kind in ("ipv4", "ipv6"):
            # Link-local IPv6 addresses come as "fe80::1%eth0"; the zone is the interface.
            address = addr.address.split("%", 1)[0]
            addresses.append(
                {
                    "family": addr.kind,
                    "address": clip(address, 64),
                    "prefix_length": prefix_length(addr.netmask),
                }
            )
    return {
        "name": clip(nic.name, 64),
        "mac": mac,
        "is_up": nic.is_up,
        "mtu": nic.mtu,
        "addresses": addresses,
    }


def prefix_length(netmask: str | None) -> int | None:
    """The prefix length of a dotted or colon netmask; None if absent or not contiguous."""
    if not netmask:
        return None
    try:
        mask = ipaddress.ip_address(netmask)
    except ValueError:
        return None
    bits = mask.max_prefixlen
    value = int(mask)
    ones = bin(value).count("1")
    # A valid netmask is `ones` one-bits followed only by zero-bits.
    expected = ((1 << ones) - 1) << (bits - ones) if ones else 0
    return ones if value == expected else None
