"""Metrics exposition from the host cache, parsed back as Prometheus would."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from rules.language.model import Severity
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
    registry, _ = build_registry(cache, "9.9.9")
    samples: Samples = {}
    for family in text_string_to_metric_families(generate_latest(registry).decode()):
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
    assert failing == {"critical": 1, "high": 2, "medium": 0, "low": 0, "info": 0}
    assert samples[("canhgac_build_info", (("version", "9.9.9"),))] == 1


def test_series_per_host_are_bounded() -> None:
    cache = HostStateCache()
    cache.put(WEB)
    host_series = [key for key in scrape(cache) if key[0].startswith("canhgac_host_")]
    assert len(host_series) == 10  # info, score, timestamp, 5 severities, errors, stale
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
    registry, _ = build_registry(cache, "1", 3600.0, lambda: RECEIVED.replace(minute=30))
    samples: Samples = {}
    for family in text_string_to_metric_families(generate_latest(registry).decode()):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    assert samples[("canhgac_host_stale", (("agency", "so-a"), ("host", "web01")))] == 0
    assert samples[("canhgac_host_stale", (("agency", "so-a"), ("host", "old")))] == 1


def test_outcome_counters_start_at_zero_and_count() -> None:
    cache = HostStateCache()
    registry, ingest_metrics = build_registry(cache, "9.9.9")
    ingest_metrics.count("accepted")
    ingest_metrics.count("accepted")
    text = generate_latest(registry).decode()
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
    assert b'outcome="accepted"} 0.0' in generate_latest(second[0])
