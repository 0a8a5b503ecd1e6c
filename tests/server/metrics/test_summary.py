"""A report's posture read from its facts: counts, oldest pending, earliest expiry, exposure."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from server.metrics.summary import posture_of
from server.storage.report_store import HostPosture


def pending(name: str, first_seen: str, *, security: bool) -> dict[str, Any]:
    return {
        "name": name,
        "current_version": "1",
        "candidate_version": "2",
        "architecture": "amd64",
        "security": security,
        "first_seen_at": first_seen,
        "pending_days": 0,
    }


def test_posture_of_a_full_document() -> None:
    facts = {
        "updates": {
            "manager": "apt",
            "pending": [
                pending("openssl", "2026-11-01T00:00:00Z", security=True),
                pending("libc6", "2026-11-20T00:00:00Z", security=True),
                # Older, but not a security update: not the oldest *security* pending.
                pending("vim", "2026-10-01T00:00:00Z", security=False),
            ],
            "pending_count": 3,
            "security_count": 2,
            "running_kernel": "6.1",
            "reboot_required": True,
        },
        "certificates": [
            {"location": "/a.pem#0", "source": "file", "not_after": "2027-01-01T00:00:00Z"},
            {"location": "/a.pem#1", "source": "file", "not_after": "2026-12-24T10:00:00.5Z"},
            {"location": "10.0.0.1:443", "source": "endpoint", "reachable": False},
        ],
        "listening": [
            {"protocol": "tcp", "port": 22, "exposure": "all"},
            {"protocol": "tcp", "port": 22, "exposure": "specific"},  # same service, v6
            {"protocol": "udp", "port": 161, "exposure": "specific"},
            {"protocol": "tcp", "port": 5432, "exposure": "loopback"},
        ],
        "spool_dropped_reports": 4,
    }
    assert posture_of(facts) == HostPosture(
        updates_security=2,
        updates_other=1,
        update_oldest_pending_at=datetime(2026, 11, 1, tzinfo=UTC),
        reboot_required=True,
        cert_earliest_expiry_at=datetime(2026, 12, 24, 10, 0, 0, 500000, tzinfo=UTC),
        exposed_services=2,
        spool_dropped_reports=4,
    )


def test_absent_domains_are_unknown_not_zero() -> None:
    """A failed updates collector must not look like a fully patched host."""
    assert posture_of({"errors": [{"domain": "updates"}]}) == HostPosture()
    assert HostPosture().updates_security is None
    assert posture_of({"listening": []}).exposed_services == 0  # read, and nothing exposed


def test_null_reboot_flag_is_unknown() -> None:
    facts = {"updates": {"pending": [], "pending_count": 0, "security_count": 0}}
    posture = posture_of(facts | {"updates": facts["updates"] | {"reboot_required": None}})
    assert posture.reboot_required is None
    assert (posture.updates_security, posture.updates_other) == (0, 0)
    assert posture.update_oldest_pending_at is None
