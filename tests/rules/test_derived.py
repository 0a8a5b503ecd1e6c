"""Derived ages: stripped for storage, recomputed from timestamps for evaluation."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from rules.derived import DERIVED, add_derived, strip_derived
from rules.facts import load_schema
from rules.tooling.lint import _SchemaWalker

NOW = datetime(2026, 11, 27, 12, 0, 0, tzinfo=UTC)


def document() -> dict[str, Any]:
    return {
        "host": {
            "hostname": "web01",
            "boot_time": "2026-11-20T12:00:00Z",
            "uptime_seconds": 604800,
        },
        "certificates": [
            {"location": "/etc/ssl/a.pem#0", "not_after": "2026-12-07T12:00:00Z", "days_left": 10},
            {
                "location": "/etc/ssl/old.pem#0",
                "not_after": "2026-11-26T00:00:00Z",
                "days_left": -2,
            },
        ],
        "updates": {
            "index_refreshed_at": "2026-11-26T00:00:00Z",
            "index_age_days": 1.5,
            "last_upgrade_at": None,
            "last_upgrade_days": None,
            "pending": [
                {"name": "openssl", "first_seen_at": "2026-11-17T12:00:00Z", "pending_days": 10.0}
            ],
        },
        "malware_protection": {
            "products": [{"name": "clamav", "signature_updated_at": "2026-11-27T00:00:00Z"}]
        },
    }


def test_strip_removes_every_derived_field_and_leaves_the_input_alone() -> None:
    original = document()
    stripped = strip_derived(original)
    assert "uptime_seconds" not in stripped["host"]
    assert all("days_left" not in c for c in stripped["certificates"])
    assert "pending_days" not in stripped["updates"]["pending"][0]
    assert original["host"]["uptime_seconds"] == 604800  # a copy was stripped


def test_add_derived_recomputes_what_the_agent_reported() -> None:
    original = document()
    rebuilt = add_derived(strip_derived(original), NOW)
    assert rebuilt["host"]["uptime_seconds"] == 604800
    assert [c["days_left"] for c in rebuilt["certificates"]] == [10, -2]
    assert rebuilt["updates"]["index_age_days"] == 1.5
    assert rebuilt["updates"]["last_upgrade_days"] is None
    assert rebuilt["updates"]["pending"][0]["pending_days"] == 10.0
    assert rebuilt["malware_protection"]["products"][0]["signature_age_days"] == 0.5


def test_days_left_counts_down_as_time_passes() -> None:
    later = add_derived(strip_derived(document()), datetime(2026, 12, 7, 11, 0, tzinfo=UTC))
    assert later["certificates"][0]["days_left"] == 0  # expires within 24 hours


def test_missing_containers_and_bad_timestamps_are_tolerated() -> None:
    facts: dict[str, Any] = {"host": {"boot_time": "not a time"}, "certificates": "oops"}
    add_derived(facts, NOW)
    assert facts["host"]["uptime_seconds"] is None
    assert facts["certificates"] == "oops"


def test_every_derived_field_is_in_the_schema() -> None:
    schema = load_schema()
    walker = _SchemaWalker(schema)
    for derived in DERIVED:
        node, missing = walker.resolve(schema, derived.container.removesuffix("[]"))
        assert node is not None, missing
        if derived.container.endswith("[]"):
            node = walker.items(node)
            assert node is not None
        for name in (derived.field, derived.source):
            assert walker.step(node, name) is not None, (derived.container, name)
