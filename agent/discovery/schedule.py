"""Discovery on its own schedule: a sweep at most every `interval_seconds`, its result
kept in the state directory and reported with every report until the next sweep.

The agent collects every few minutes, while a LAN sweep is slow and noisy, so the
`discovery` collector sweeps only when the stored sweep is older than the interval,
was made with other settings (subnets, ports, limits), or cannot be read; otherwise
it reports the stored domain as it is. Each device keeps the first and the latest
sweep that found it (by MAC, else IP) across sweeps: `first_seen`/`last_seen`. A
failed sweep is not stored: the next collection tries again, and meanwhile the
domain is an error (the failure), never the previous result passed off as current.

The file (`discovery.json`) is written atomically (temporary file, fsync, rename) so a
power cut leaves the previous sweep or the new one, never half of one.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import astuple, dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from agent.discovery.config import DiscoveryConfig
from agent.discovery.errors import DiscoveryError
from agent.discovery.facts import incomplete_reason, result_dict
from agent.discovery.model import ScanResult

STATE_FILE = "discovery.json"
FORMAT = 1
MAX_STATE_BYTES = 32 * 1024 * 1024  # a full domain is well under this; refuse anything larger
Seen = dict[str, list[str]]  # device key -> [first_seen, last_seen]
# Devices gone longer than this are forgotten (one coming back is new again), and the
# history never holds more than MAX_SEEN devices (the least recently seen go first).
FORGET_AFTER = timedelta(days=180)
MAX_SEEN = 16384


@dataclass(frozen=True)
class Sweep:
    """What the collector reports: the domain, and why it is incomplete (if it is)."""

    domain: dict[str, Any]
    incomplete: str | None
    swept: bool  # a sweep ran now (False: the stored one is reported)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def fingerprint(settings: DiscoveryConfig) -> str:
    """What a sweep was made with: another fingerprint makes the stored one stale
    (the interval is left out: changing it does not change what a sweep finds)."""
    relevant = astuple(replace(settings, interval_seconds=0.0))
    return hashlib.sha256(json.dumps(relevant, default=str).encode()).hexdigest()[:16]


def device_key(device: Mapping[str, Any]) -> str:
    mac = device.get("mac")
    return f"mac:{mac}" if isinstance(mac, str) else f"ip:{device.get('ip')}"


def _load(path: Path) -> dict[str, Any] | None:
    """The stored sweep, or None when absent or unusable (a new sweep replaces it)."""
    try:
        with path.open("rb") as handle:
            raw = handle.read(MAX_STATE_BYTES + 1)
    except FileNotFoundError:
        return None
    except OSError as e:
        raise DiscoveryError(f"cannot read {path}: {e.strerror or e}") from e
    if len(raw) > MAX_STATE_BYTES:
        return None
    try:
        stored = json.loads(raw)
    except (UnicodeDecodeError, ValueError):
        return None
    if not isinstance(stored, dict) or stored.get("format") != FORMAT:
        return None
    if not isinstance(stored.get("domain"), dict) or not isinstance(stored.get("seen"), dict):
        return None
    for times in stored["seen"].values():
        if not (
            isinstance(times, list) and len(times) == 2 and all(isinstance(t, str) for t in times)
        ):
            return None
    return stored


def _write(path: Path, stored: Mapping[str, Any]) -> None:
    data = (json.dumps(stored, separators=(",", ":")) + "\n").encode()
    tmp_name: str | None = None
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=".discovery.", suffix=".tmp", dir=path.parent)
        with os.fdopen(fd, "wb") as tmp:
            tmp.write(data)
            tmp.flush()
            os.fsync(tmp.fileno())
        os.replace(tmp_name, path)
        tmp_name = None
        directory = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(directory)  # the rename itself survives a power cut
        finally:
            os.close(directory)
    except OSError as e:
        raise DiscoveryError(f"cannot write {path}: {e.strerror or e}") from e
    finally:
        if tmp_name is not None:
            Path(tmp_name).unlink(missing_ok=True)


def _with_seen(
    domain: dict[str, Any], previous: Seen, now: datetime
) -> tuple[dict[str, Any], Seen]:
    """The domain with each device's first/last seen, and the history to keep: devices
    not found this time keep theirs, so one that comes back keeps its first seen."""
    stamp = _iso(now)
    forget_before = _iso(now - FORGET_AFTER)  # same format: strings compare as times
    seen: Seen = {k: list(v) for k, v in previous.items() if v[1] >= forget_before}
    devices = []
    for device in domain["devices"]:
        first = seen.get(device_key(device), [stamp])[0]
        seen[device_key(device)] = [first, stamp]
        devices.append({**device, "first_seen": first, "last_seen": stamp})
    kept = sorted(
        seen.items(),
        key=lambda entry: entry[1][1],
        reverse=True,
    )[:MAX_SEEN]
    return {**domain, "swept_at": stamp, "devices": devices}, dict(kept)


def scheduled_sweep(
    settings: DiscoveryConfig,
    state_dir: Path | None,
    scan: Callable[[], ScanResult],
    now: datetime,
) -> Sweep:
    """The domain to report now: the stored sweep while it is fresh, else a new one.

    Without a state directory (`check`, `collect --no-state`) every call sweeps and
    nothing is written. `scan` raises DiscoveryError (refused subnet, failed scan);
    the stored sweep is then left as it was and the error goes up to the collector.
    """
    path = state_dir / STATE_FILE if state_dir is not None else None
    stored = _load(path) if path is not None else None
    made_with = fingerprint(settings)
    if stored is not None and stored.get("settings") == made_with:
        swept_at = stored["domain"].get("swept_at")
        try:
            age = now - datetime.fromisoformat(str(swept_at).replace("Z", "+00:00"))
        except ValueError:
            age = None
        if age is not None and timedelta(0) <= age < timedelta(seconds=settings.interval_seconds):
            return Sweep(stored["domain"], stored.get("incomplete"), swept=False)
    result = scan()
    previous: Seen = stored["seen"] if stored is not None else {}
    domain, seen = _with_seen(result_dict(result), previous, now)
    incomplete = incomplete_reason(result)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        _write(
            path,
            {
                "format": FORMAT,
                "settings": made_with,
                "domain": domain,
                "incomplete": incomplete,
                "seen": seen,
            },
        )
    return Sweep(domain, incomplete, swept=True)
