"""The feed-age series the vulnerability alerts read (dashboards/prometheus/alerts.yml:
CanhgacVulnFeedStale, CanhgacVulnDbMissing): each imported feed's age beside the
configured maximum, from a real store; without a store, the maximum alone."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from server.metrics.hoststate import HostStateCache
from server.metrics.vulnerabilities import VULNDB_AGE, VULNDB_MAX_AGE, VulnerabilityMetrics
from server.storage.database import Database
from server.vulns.matching import VulnMatcher
from tests.server.vulns.conftest import FETCHED, import_samples

NOW = datetime(2026, 12, 8, 6, 0, tzinfo=UTC)  # nine days after the samples were fetched


def _series(database: Database, matcher: VulnMatcher) -> dict[tuple[str, str], float]:
    registry = CollectorRegistry()
    registry.register(
        VulnerabilityMetrics(database, lambda: matcher, HostStateCache(), lambda: NOW)
    )
    text = generate_latest(registry).decode()
    return {
        (sample.name, sample.labels.get("feed", "")): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name in (VULNDB_AGE, VULNDB_MAX_AGE)
    }


def test_feed_ages_beside_the_maximum(database: Database, tmp_path: Path) -> None:
    store = tmp_path / "vulndb.sqlite"
    import_samples(store, ("debian-tracker.json", "kev.json"))
    series = _series(database, VulnMatcher(store, 7))
    assert series[(VULNDB_MAX_AGE, "")] == 7 * 86400
    assert series[(VULNDB_AGE, "debian-tracker")] == (NOW - FETCHED).total_seconds() > 7 * 86400
    assert (VULNDB_AGE, "kev") in series


def test_no_store_exports_the_maximum_only(database: Database, tmp_path: Path) -> None:
    series = _series(database, VulnMatcher(tmp_path / "absent.sqlite", 7))
    assert series == {(VULNDB_MAX_AGE, ""): 7 * 86400}
