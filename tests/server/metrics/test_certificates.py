"""Opt-in per-certificate series: read at refresh from the stored facts (SQLite and
PostgreSQL), capped, sanitised, and linted by promtool."""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from server.config import ServerConfig, from_mapping
from server.errors import ConfigError
from server.ingest.service import IngestService
from server.metrics import certificates as certs
from server.metrics.exporter import build_registry
from server.metrics.hoststate import HostStateCache
from server.storage.database import Database
from tests.server.helpers import body_of, iso, make_facts, new_token
from tests.support import require_tool

NOW = datetime.now(UTC).replace(microsecond=0)
FAMILY = "canhgac_cert_not_after_timestamp_seconds"


def certificate(location: str, subject: str, days: int) -> dict[str, Any]:
    return {
        "location": location,
        "source": "file",
        "path": location.split("#", maxsplit=1)[0],
        "chain_position": 0,
        "subject": subject,
        "issuer": "CN=ca",
        "serial": "01",
        "not_before": iso(NOW - timedelta(days=300)),
        "not_after": iso(NOW + timedelta(days=days)),
        "days_left": days,
        "key_type": "RSA",
        "signature_algorithm": "sha256WithRSAEncryption",
        "self_signed": False,
        "is_ca": False,
        "fingerprint_sha256": "b" * 64,
    }


UNREACHABLE = {
    "location": "10.0.0.9:443",
    "source": "endpoint",
    "address": "10.0.0.9",
    "port": 443,
    "reachable": False,
    "reason": {"kind": "refused", "detail": "connection refused"},
}


def ingest(service: IngestService, token: str, **facts: Any) -> None:
    service.ingest(service.authenticate(token), body_of(make_facts(**facts)), None)


def series(text: str) -> dict[tuple[tuple[str, str], ...], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == FAMILY:
                out[tuple(sorted(sample.labels.items()))] = sample.value
    return out


def test_subject_cn() -> None:
    assert certs.subject_cn("CN=web01,O=So TTTT") == "web01"
    assert certs.subject_cn("O=So TTTT, CN=web\\,01") == "web\\,01"
    assert certs.subject_cn("O=no common name") == ""
    assert certs.subject_cn(None) == ""


def test_certificates_from_refresh_capped_and_sanitised(
    service: IngestService, database: Database
) -> None:
    hostile = 'CN=evil"\n# TYPE canhgac_build_info counter\x07,O=x'
    ingest(
        service,
        new_token(database, "so-a"),
        agent_id="a-1",
        hostname="web01",
        certificates=[
            certificate("/etc/ssl/web.pem#0", "CN=web01.so-a.gov.vn,O=So A", 20),
            certificate("/etc/ssl/evil.pem#0", hostile, 40),
            UNREACHABLE,
        ],
    )
    ingest(
        service,
        new_token(database, "so-b"),
        agent_id="b-1",
        hostname="db01",
        certificates=[certificate("10.0.0.5:5432#0", "CN=db01", 5)],
    )
    ingest(service, new_token(database, "so-b"), agent_id="b-2", hostname="nocert")

    off = HostStateCache()
    off.refresh(database)
    assert off.certificates is None  # off by default: nothing kept, nothing read
    assert FAMILY + "{" not in build_registry(off, "1")[0].render().decode()

    replica = HostStateCache()
    exporter, _ = build_registry(replica, "1", cert_cap=10)
    replica.refresh(database)
    text = exporter.render().decode()
    got = series(text)
    expected_web = (
        ("agency", "so-a"),
        ("host", "web01"),
        ("location", "/etc/ssl/web.pem#0"),
        ("subject_cn", "web01.so-a.gov.vn"),
    )
    assert got[expected_web] == (NOW + timedelta(days=20)).timestamp()
    evil = [labels for labels in got if dict(labels)["location"] == "/etc/ssl/evil.pem#0"]
    assert [dict(labels)["subject_cn"] for labels in evil] == [
        'evil"# TYPE canhgac_build_info counter'
    ]
    assert len(got) == 3  # the unreachable endpoint and the host without any: no series
    assert "\n# TYPE canhgac_build_info counter" not in text.replace(
        "# TYPE canhgac_build_info gauge", ""
    )

    capped, _ = build_registry(replica, "1", cert_cap=2)
    first = capped.render().decode()
    assert len(series(first)) == 2
    dropped = [
        line for line in first.splitlines() if line.startswith("canhgac_metrics_series_dropped")
    ]
    assert f'canhgac_metrics_series_dropped_total{{family="{FAMILY}"}} 1.0' in dropped

    promtool = require_tool("promtool")
    checked = subprocess.run(
        [promtool, "check", "metrics"], input=text.encode(), capture_output=True, check=False
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert checked.stdout + checked.stderr == b""


def test_only_changed_hosts_are_read(service: IngestService, database: Database) -> None:
    token = new_token(database, "so-a")
    ingest(service, token, agent_id="a-1", certificates=[certificate("/a.pem#0", "CN=a", 9)])
    reads: list[Sequence[int]] = []
    original = certs.load_certificates

    def counting(db: Database, pks: Sequence[int]) -> dict[int, object]:
        reads.append(list(pks))
        return original(db, pks)

    replica = HostStateCache()
    index = replica.track_certificates()
    with pytest.MonkeyPatch.context() as patch:
        # Only to count calls: the real loader still reads the real database.
        patch.setattr(certs, "load_certificates", counting)
        replica.refresh(database)
        replica.refresh(database)
        ingest(
            service,
            token,
            agent_id="a-1",
            seq=2,
            certificates=[certificate("/a.pem#0", "CN=a", 99)],
        )
        replica.refresh(database)
    assert [len(r) for r in reads] == [1, 1]
    text, dropped = index.render(10)
    assert dropped == 0
    assert str((NOW + timedelta(days=99)).timestamp()) in text


def test_cert_cap_config() -> None:
    assert ServerConfig().metrics_cert_max_series == 0
    assert from_mapping({"metrics_cert_max_series": 5}).metrics_cert_max_series == 5
    with pytest.raises(ConfigError, match="metrics_cert_max_series"):
        from_mapping({"metrics_cert_max_series": -1})
