"""Metrics exposition from the host cache, parsed back as Prometheus would."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

from prometheus_client.parser import text_string_to_metric_families

from rules.language.model import Severity
from server.evaluation.loaded_policy import ServerPolicy
from server.metrics.exporter import build_registry
from server.metrics.hoststate import HostSnapshot, HostStateCache

RECEIVED = datetime(2026, 11, 27, 8, 0, tzinfo=UTC)
WEB = HostSnapshot(
    agent_id="agent-1",
    agency_id="so-a",
    hostname="web01",
    label="web01",
    os_pretty_name="Debian 12",
    agent_version="0.1.0",
    last_seq=3,
    last_collected_at=RECEIVED,
    last_received_at=RECEIVED,
    score_ratio=0.75,
    error_count=2,
    failing={Severity.CRITICAL: 1, Severity.HIGH: 2},
)

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(cache: HostStateCache) -> Samples:
    exporter, _ = build_registry(cache, "9.9.9")
    samples: Samples = {}
    for family in text_string_to_metric_families(exporter.render().decode()):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def named(samples: Samples, name: str) -> Samples:
    return {key: value for key, value in samples.items() if key[0] == name}


def test_host_series() -> None:
    cache = HostStateCache()
    cache.put(WEB)
    samples = scrape(cache)
    labels = (("agency", "so-a"), ("host", "web01"))
    info_labels = tuple(
        sorted(
            {
                "agency": "so-a",
                "host": "web01",
                "hostname": "web01",
                "agent_id": "agent-1",
                "os": "Debian 12",
                "agent_version": "0.1.0",
            }.items()
        )
    )
    assert named(samples, "canhgac_host_info") == {("canhgac_host_info", info_labels): 1.0}
    assert samples[("canhgac_host_score_ratio", labels)] == 0.75
    assert samples[("canhgac_host_last_report_timestamp_seconds", labels)] == RECEIVED.timestamp()
    assert samples[("canhgac_host_rules_error", labels)] == 2
    failing = {
        dict(key[1])["severity"]: value
        for key, value in named(samples, "canhgac_host_rules_failing").items()
    }
    # Severities with nothing failing carry no information: not exported.
    assert failing == {"critical": 1, "high": 2}
    assert samples[("canhgac_build_info", (("version", "9.9.9"),))] == 1


def test_series_per_host_are_bounded() -> None:
    cache = HostStateCache()
    cache.put(WEB)
    host_series = [key for key in scrape(cache) if key[0].startswith("canhgac_host_")]
    # info, score, timestamp, 2 failing severities, errors, stale (no posture known)
    assert len(host_series) == 7
    assert all("instance" not in dict(labels) for _, labels in host_series)


def test_unknown_score_is_omitted() -> None:
    cache = HostStateCache()
    cache.put(replace(WEB, score_ratio=None))
    samples = scrape(cache)
    assert named(samples, "canhgac_host_score_ratio") == {}
    assert named(samples, "canhgac_host_rules_error")


def test_the_host_label_is_the_stored_one() -> None:
    """Labels are decided once per host (tests/server/test_ingest.py checks how)."""
    cache = HostStateCache()
    cache.put(WEB)
    cache.put(replace(WEB, agent_id="agent-2", label="web01/agent-2"))
    cache.put(replace(WEB, agent_id="agent-3", agency_id="so-b"))
    hosts = {
        (dict(labels)["agency"], dict(labels)["host"])
        for _, labels in named(scrape(cache), "canhgac_host_score_ratio")
    }
    assert hosts == {("so-a", "web01"), ("so-a", "web01/agent-2"), ("so-b", "web01")}


def test_stale_hosts() -> None:
    cache = HostStateCache()
    cache.put(WEB)
    cache.put(
        replace(WEB, agent_id="agent-2", label="old", last_received_at=RECEIVED.replace(hour=1))
    )
    exporter, _ = build_registry(cache, "1", 3600.0, lambda: RECEIVED.replace(minute=30))
    samples: Samples = {}
    for family in text_string_to_metric_families(exporter.render().decode()):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    assert samples[("canhgac_host_stale", (("agency", "so-a"), ("host", "web01")))] == 0
    assert samples[("canhgac_host_stale", (("agency", "so-a"), ("host", "old")))] == 1


def test_outcome_counters_start_at_zero_and_count() -> None:
    cache = HostStateCache()
    exporter, ingest_metrics = build_registry(cache, "9.9.9")
    ingest_metrics.count("accepted")
    ingest_metrics.count("accepted")
    text = exporter.render().decode()
    samples = {
        s.labels["outcome"]: s.value
        for family in text_string_to_metric_families(text)
        if family.name == "canhgac_reports_received"
        for s in family.samples
        if s.name == "canhgac_reports_received_total"
    }
    assert samples["accepted"] == 2
    assert samples["invalid"] == 0
    assert len(samples) == 11


def test_registries_are_independent() -> None:
    """Our own registry: two apps in one process (tests, replicas) never clash."""
    first = build_registry(HostStateCache(), "1")
    second = build_registry(HostStateCache(), "1")
    first[1].count("accepted")
    assert b'outcome="accepted"} 0.0' in second[0].render()


def test_posture_series() -> None:
    cache = HostStateCache()
    expiry = datetime(2026, 12, 20, tzinfo=UTC)
    oldest = datetime(2026, 11, 1, tzinfo=UTC)
    cache.put(
        replace(
            WEB,
            updates_security=3,
            updates_other=7,
            update_oldest_pending_at=oldest,
            reboot_required=False,
            cert_earliest_expiry_at=expiry,
            exposed_services=4,
            spool_dropped_reports=2,
        )
    )
    samples = scrape(cache)
    labels = (("agency", "so-a"), ("host", "web01"))
    updates = named(samples, "canhgac_host_updates_pending")
    by_class = {dict(key[1])["class"]: value for key, value in updates.items()}
    assert by_class == {"security": 3, "other": 7}
    oldest_name = "canhgac_host_update_oldest_pending_timestamp_seconds"
    assert samples[(oldest_name, labels)] == oldest.timestamp()
    assert samples[("canhgac_host_reboot_required", labels)] == 0
    expiry_name = "canhgac_host_cert_earliest_expiry_timestamp_seconds"
    assert samples[(expiry_name, labels)] == expiry.timestamp()
    assert samples[("canhgac_host_exposed_services", labels)] == 4
    assert samples[("canhgac_host_spool_dropped_reports_total", labels)] == 2


def test_unknown_posture_exports_nothing() -> None:
    cache = HostStateCache()
    cache.put(WEB)  # every posture field unknown (None), no dropped reports
    names = {name for name, _ in scrape(cache)}
    for absent in (
        "canhgac_host_updates_pending",
        "canhgac_host_reboot_required",
        "canhgac_host_cert_earliest_expiry_timestamp_seconds",
        "canhgac_host_exposed_services",
        "canhgac_host_spool_dropped_reports_total",
    ):
        assert absent not in names


def test_agency_aggregates_pool_scores_by_weight() -> None:
    """docs/scoring.md: Σ earned / Σ possible, not the mean of the ratios."""
    cache = HostStateCache()
    cache.put(replace(WEB, score_ratio=1.0, score_weight=30.0))
    cache.put(replace(WEB, agent_id="a2", label="db", score_ratio=0.0, score_weight=10.0))
    cache.put(replace(WEB, agent_id="a3", label="x", score_ratio=None, score_weight=0.0))
    cache.put(
        replace(
            WEB,
            agent_id="a4",
            label="old",
            last_received_at=RECEIVED.replace(hour=1),
            score_ratio=0.5,
            score_weight=0.0,  # nothing applicable: counts for nothing
        )
    )
    exporter, _ = build_registry(cache, "1", 3600.0, lambda: RECEIVED.replace(minute=30))
    samples: Samples = {}
    for family in text_string_to_metric_families(exporter.render().decode()):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    assert samples[("canhgac_agency_score_ratio", (("agency", "so-a"),))] == 0.75
    hosts = named(samples, "canhgac_agency_hosts")
    assert hosts == {
        ("canhgac_agency_hosts", (("agency", "so-a"), ("state", "reporting"))): 3,
        ("canhgac_agency_hosts", (("agency", "so-a"), ("state", "stale"))): 1,
    }


def test_agent_strings_are_sanitised_and_escaped() -> None:
    """A hostile hostname cannot inject a series or break the exposition."""
    cache = HostStateCache()
    hostile = 'evil"}\ncanhgac_host_score_ratio{host="forged"} 1\\'
    cache.put(replace(WEB, hostname=hostile, label=hostile, os_pretty_name="\x1b[31mred\x07"))
    text = build_registry(cache, "1")[0].render().decode()
    parsed = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }
    hosts = {dict(labels)["host"] for name, labels in parsed if name == "canhgac_host_score_ratio"}
    assert hosts == {'evil"}canhgac_host_score_ratio{host="forged"} 1\\'}  # one, newline gone
    (os_label,) = {dict(labels)["os"] for name, labels in parsed if name == "canhgac_host_info"}
    assert os_label == "[31mred"


def test_rule_info_from_the_policy(policy: ServerPolicy) -> None:
    exporter, _ = build_registry(HostStateCache(), "1", rules=lambda: policy.ruleset.rules)
    samples = {
        s.labels["rule_id"]: s.labels
        for family in text_string_to_metric_families(exporter.render().decode())
        if family.name == "canhgac_rule_info"
        for s in family.samples
    }
    assert set(samples) == policy.rule_ids
    some = next(iter(policy.ruleset.rules))
    assert samples[some.id]["title"] == some.title.en
    assert samples[some.id]["severity"] == some.severity.value


def test_rendered_host_lines_are_reused_until_the_snapshot_changes() -> None:
    cache = HostStateCache()
    cache.put(WEB)
    exporter, _ = build_registry(cache, "1")
    first = exporter.render()
    assert exporter.render() == first
    cache.put(replace(WEB, last_seq=4, score_ratio=0.5))
    assert b'canhgac_host_score_ratio{agency="so-a",host="web01"} 0.5' in exporter.render()
