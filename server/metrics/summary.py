"""A report's posture for the metrics, read from its facts at ingest (plain values).

The metrics need a handful of numbers per host (pending updates, reboot, earliest
certificate expiry, exposed services, spool drops); reading them once per report at
ingest and storing them on the host row means neither a scrape nor a state refresh
ever opens the facts. Anything absent or malformed is `None` ("unknown"), never zero:
an updates collector that failed must not look like a fully patched host.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from server.storage.report_store import HostPosture


def timestamp_of(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed.astimezone(UTC) if parsed.tzinfo is not None else None


def _count(value: object) -> int | None:
    # bool is an int in Python; a count never is one.
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def _updates(updates: object) -> dict[str, Any]:
    if not isinstance(updates, Mapping):
        return {}
    pending = _count(updates.get("pending_count"))
    security = _count(updates.get("security_count"))
    oldest: datetime | None = None
    items = updates.get("pending")
    if isinstance(items, list):
        seen = [
            timestamp_of(item.get("first_seen_at"))
            for item in items
            if isinstance(item, Mapping) and item.get("security") is True
        ]
        known = [t for t in seen if t is not None]
        oldest = min(known) if known else None
    reboot = updates.get("reboot_required")
    return {
        "updates_security": security,
        "updates_other": (
            pending - security if pending is not None and security is not None else None
        ),
        "update_oldest_pending_at": oldest,
        "reboot_required": reboot if isinstance(reboot, bool) else None,
    }


def _earliest_expiry(certificates: object) -> datetime | None:
    if not isinstance(certificates, list):
        return None
    expiries = [
        timestamp_of(item.get("not_after")) for item in certificates if isinstance(item, Mapping)
    ]
    known = [t for t in expiries if t is not None]
    return min(known) if known else None


def _exposed(listening: object) -> int | None:
    """Distinct (protocol, port) bound to a non-loopback address: what the LAN sees."""
    if not isinstance(listening, list):
        return None
    return len(
        {
            (item.get("protocol"), item.get("port"))
            for item in listening
            if isinstance(item, Mapping) and item.get("exposure") in ("all", "specific")
        }
    )


def posture_of(facts: Mapping[str, Any]) -> HostPosture:
    """The posture of one validated facts document (timestamps, not derived ages)."""
    dropped = _count(facts.get("spool_dropped_reports"))
    return HostPosture(
        **_updates(facts.get("updates")),
        cert_earliest_expiry_at=_earliest_expiry(facts.get("certificates")),
        exposed_services=_exposed(facts.get("listening")),
        spool_dropped_reports=dropped or 0,
    )
