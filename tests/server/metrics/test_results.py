"""Per-rule and per-requirement aggregates from each host's latest results, in memory.

Reports go through the real ingest service into a real database (SQLite and
PostgreSQL); a second replica's cache refreshes from it, as in production, and the
exposition is parsed back as Prometheus would (and checked by promtool).
"""

from __future__ import annotations

import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from rules.language.model import Localized
from rules.policy.frameworks import Framework, Requirement
from server.config import ServerConfig, from_mapping
from server.errors import ConfigError
from server.evaluation.loaded_policy import ServerPolicy, load_server_policy
from server.evaluation.reeval import Reevaluator
from server.ingest.service import IngestService
from server.metrics.exporter import Exporter, build_registry
from server.metrics.hoststate import HostStateCache
from server.metrics.results import ResultsIndex, Row, load_results
from server.storage.database import Database
from tests.server.helpers import RULES_DIR, body_of, make_facts, new_token, telnet
from tests.support import require_tool

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]

# A framework built here (the collector's test rules ship none): R1 maps two rules,
# R2 a rule the policy does not have (never assessed: no series).
FRAMEWORK = Framework(
    id="test-fw",
    version="1",
    title=Localized(vi="Khung kiểm thử", en="Test framework"),
    reference="",
    confidence="high",
    groups=(),
    requirements=(
        Requirement(
            id="R1",
            group="G",
            title=Localized(vi="Y1", en="R1"),
            rules=("TEST-TELNET", "TEST-ARCH"),
            confidence="high",
        ),
        Requirement(
            id="R2",
            group="G",
            title=Localized(vi="Y2", en="R2"),
            rules=("TEST-NOT-IN-POLICY",),
            confidence="high",
        ),
    ),
)


def ingest(service: IngestService, token: str, **facts: Any) -> None:
    service.ingest(service.authenticate(token), body_of(make_facts(**facts)), None)


def arm(architecture: str, hostname: str) -> dict[str, Any]:
    return {
        "hostname": hostname,
        "os": {"id": "debian", "name": "Debian GNU/Linux", "pretty_name": "Debian 12"},
        "kernel": {"release": "6.1.0-18-amd64"},
        "architecture": architecture,
    }


def exporter_of(cache: HostStateCache, policy: ServerPolicy, cap: int = 0) -> Exporter:
    exporter, _ = build_registry(
        cache,
        "1",
        rules=lambda: policy.ruleset.rules,
        frameworks=lambda: (FRAMEWORK,),
        weights=lambda: policy.weights,
        rule_failing_cap=cap,
    )
    return exporter


def parse(text: str) -> Samples:
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def rule_hosts(samples: Samples) -> dict[tuple[str, str, str], float]:
    out = {}
    for (name, labels), value in samples.items():
        if name == "canhgac_rule_hosts":
            got = dict(labels)
            out[(got["agency"], got["rule_id"], got["result"])] = value
    return out


def fleet(service: IngestService, database: Database) -> str:
    """Three hosts in two agencies; the token of web01 (telnet exposed)."""
    a = new_token(database, "so-a")
    ingest(service, a, agent_id="a-1", hostname="web01", listening=[telnet()])
    ingest(service, new_token(database, "so-a"), agent_id="a-2", hostname="db01")
    b = new_token(database, "so-b")
    ingest(service, b, agent_id="b-1", hostname="arm01", host=arm("aarch64", "arm01"))
    return a


def test_rule_hosts_and_requirement_ratio(
    service: IngestService, database: Database, policy: ServerPolicy
) -> None:
    fleet(service, database)
    replica = HostStateCache()
    replica.refresh(database)
    text = exporter_of(replica, policy).render().decode()
    samples = parse(text)
    assert rule_hosts(samples) == {
        ("so-a", "TEST-TELNET", "fail"): 1,
        ("so-a", "TEST-TELNET", "pass"): 1,
        ("so-a", "TEST-ARCH", "pass"): 2,
        ("so-a", "TEST-AGENT-VERSION", "pass"): 2,
        ("so-b", "TEST-TELNET", "pass"): 1,
        ("so-b", "TEST-ARCH", "fail"): 1,
        ("so-b", "TEST-AGENT-VERSION", "pass"): 1,
    }
    ratios = {
        dict(labels)["agency"]: value
        for (name, labels), value in samples.items()
        if name == "canhgac_framework_requirement_ratio"
    }
    # Weights critical 10, medium 2 (docs/scoring.md), pooled over the agency's hosts:
    # so-a = (10*1 + 2*2) / (10*2 + 2*2); so-b = 10 / (10 + 2). R2 is never assessed.
    assert ratios == {"so-a": 14 / 24, "so-b": 10 / 12}
    assert all(
        dict(labels)["requirement"] == "R1"
        for (name, labels) in samples
        if name == "canhgac_framework_requirement_ratio"
    )
    assert "canhgac_rule_failing{" not in text  # opt-in: off by default


def test_refresh_reads_only_changed_hosts_results(
    service: IngestService, database: Database, policy: ServerPolicy
) -> None:
    reads: list[list[int]] = []

    def counting(db: Database, pks: Sequence[int]) -> Mapping[int, list[Row]]:
        reads.append(list(pks))
        return load_results(db, pks)

    token = fleet(service, database)
    replica = HostStateCache(results=ResultsIndex(counting))
    replica.refresh(database)
    assert len(reads) == 1 and len(reads[0]) == 3
    replica.refresh(database)  # nothing changed: no read at all
    assert len(reads) == 1
    ingest(service, token, agent_id="a-1", seq=2, hostname="web01")  # telnet closed
    replica.refresh(database)
    assert len(reads) == 2 and len(reads[1]) == 1
    counts = rule_hosts(parse(exporter_of(replica, policy).render().decode()))
    assert counts[("so-a", "TEST-TELNET", "pass")] == 2
    assert ("so-a", "TEST-TELNET", "fail") not in counts  # zero counts are absent

    replica.results.update(database, [])  # every host gone: every count goes
    assert replica.results.aggregate().counts == {}


def test_rule_failing_detail_is_capped_and_counts_drops(
    service: IngestService, database: Database, policy: ServerPolicy
) -> None:
    fleet(service, database)
    replica = HostStateCache()
    replica.refresh(database)
    text = exporter_of(replica, policy, cap=5).render().decode()
    samples = parse(text)
    failing = {labels for (name, labels) in samples if name == "canhgac_rule_failing"}
    assert failing == {
        (
            ("agency", "so-a"),
            ("host", "web01"),
            ("rule_id", "TEST-TELNET"),
            ("severity", "critical"),
        ),
        (("agency", "so-b"), ("host", "arm01"), ("rule_id", "TEST-ARCH"), ("severity", "medium")),
    }
    dropped = ("canhgac_metrics_series_dropped_total", (("family", "canhgac_rule_failing"),))
    assert samples[dropped] == 0

    capped = exporter_of(replica, policy, cap=1)
    first = parse(capped.render().decode())
    assert sum(1 for (name, _) in first if name == "canhgac_rule_failing") == 1
    assert first[dropped] == 1
    assert parse(capped.render().decode())[dropped] == 2  # a counter: grows each scrape

    promtool = require_tool("promtool")
    checked = subprocess.run(
        [promtool, "check", "metrics"], input=text.encode(), capture_output=True, check=False
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert checked.stdout + checked.stderr == b""


def test_rule_failing_cap_config() -> None:
    assert ServerConfig().metrics_rule_failing_max_series == 0  # off by default
    config = from_mapping({"metrics_rule_failing_max_series": 20000})
    assert config.metrics_rule_failing_max_series == 20000
    for bad in (-1, "many", True):
        with pytest.raises(ConfigError, match="metrics_rule_failing_max_series"):
            from_mapping({"metrics_rule_failing_max_series": bad})


def test_re_evaluation_refreshes_the_counts(
    service: IngestService, database: Database, policy: ServerPolicy, tmp_path: Path
) -> None:
    """A re-evaluation rewrites the rows of the same report (same results_report_pk):
    its evaluated_at stamp makes the next refresh read them again."""
    fleet(service, database)
    replica = HostStateCache()
    replica.refresh(database)
    before = rule_hosts(parse(exporter_of(replica, policy).render().decode()))
    assert before[("so-a", "TEST-TELNET", "fail")] == 1
    pack = yaml.safe_load((RULES_DIR / "server-tests.yaml").read_text("utf-8"))
    pack["rules"] = [r for r in pack["rules"] if r["id"] != "TEST-TELNET"]
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules" / "pack.yaml").write_text(yaml.safe_dump(pack, allow_unicode=True))
    changed = load_server_policy(ServerConfig(rules=(tmp_path / "rules",)))
    assert Reevaluator(database).run(changed).hosts == 3
    replica.refresh(database)
    after = rule_hosts(parse(exporter_of(replica, changed).render().decode()))
    assert not any(rule == "TEST-TELNET" for _, rule, _ in after)
    assert after[("so-b", "TEST-ARCH", "fail")] == 1
