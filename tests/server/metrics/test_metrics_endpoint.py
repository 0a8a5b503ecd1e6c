"""The real app on loopback: reports ingested through the API move the posture series,
/metrics honours its credentials, and the posture survives a restart (read from the database)."""

from __future__ import annotations

import base64
import hashlib
from datetime import UTC, datetime, timedelta
from typing import Any

import requests
from prometheus_client.parser import text_string_to_metric_families

from server.metrics.hoststate import load_snapshots
from tests.server.conftest import LiveServer, LiveServers
from tests.server.helpers import body_of, iso, make_facts, telnet

TIMEOUT = 30
LABELS = (("agency", "so-test"), ("host", "web01"))


def upload(server: LiveServer, facts: dict[str, Any], token: str) -> None:
    reply = requests.post(
        server.reports_url,
        data=body_of(facts),
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
        timeout=TIMEOUT,
    )
    assert reply.status_code == 200, reply.text


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def posture_facts(seq: int, dropped: int, now: datetime) -> dict[str, Any]:
    first_seen = now - timedelta(days=20)
    expiry = now + timedelta(days=5)
    return make_facts(
        seq=seq,
        listening=[telnet(), telnet("127.0.0.1", 25)],
        updates={
            "manager": "apt",
            "pending": [
                {
                    "name": "openssl",
                    "current_version": "3.0.1",
                    "candidate_version": "3.0.2",
                    "architecture": "amd64",
                    "security": True,
                    "first_seen_at": iso(first_seen),
                    "pending_days": 20,
                }
            ],
            "pending_count": 4,
            "security_count": 1,
            "running_kernel": "6.1.0-18-amd64",
            "reboot_required": True,
        },
        certificates=[
            {
                "location": "/etc/ssl/web.pem#0",
                "source": "file",
                "path": "/etc/ssl/web.pem",
                "chain_position": 0,
                "subject": "CN=web01",
                "issuer": "CN=ca",
                "serial": "01",
                "not_before": iso(now - timedelta(days=360)),
                "not_after": iso(expiry),
                "days_left": 5,
                "key_type": "RSA",
                "signature_algorithm": "sha256WithRSAEncryption",
                "self_signed": False,
                "is_ca": False,
                "fingerprint_sha256": "a" * 64,
            }
        ],
        spool_dropped_reports=dropped,
    )


def test_posture_series_from_reports(live_servers: LiveServers, token: str) -> None:
    server = live_servers.start()
    now = datetime.now(UTC).replace(microsecond=0)
    upload(server, posture_facts(1, 3, now), token)
    upload(server, posture_facts(2, 2, now), token)
    got = samples(requests.get(f"{server.url}/metrics", timeout=TIMEOUT).text)
    updates = {
        dict(labels)["class"]: value
        for (name, labels), value in got.items()
        if name == "canhgac_host_updates_pending"
    }
    assert updates == {"security": 1, "other": 3}
    assert got[("canhgac_host_reboot_required", LABELS)] == 1
    assert got[("canhgac_host_exposed_services", LABELS)] == 1  # telnet; port 25 is loopback
    expiry = got[("canhgac_host_cert_earliest_expiry_timestamp_seconds", LABELS)]
    assert expiry == (now + timedelta(days=5)).timestamp()
    oldest = got[("canhgac_host_update_oldest_pending_timestamp_seconds", LABELS)]
    assert oldest == (now - timedelta(days=20)).timestamp()
    # Every delivered report adds its drops.
    assert got[("canhgac_host_spool_dropped_reports_total", LABELS)] == 5
    assert got[("canhgac_agency_hosts", (("agency", "so-test"), ("state", "reporting")))] == 1
    assert 0 < got[("canhgac_agency_score_ratio", (("agency", "so-test"),))] < 1
    assert got[("canhgac_ingest_duration_seconds_count", ())] == 2
    # What a restarted replica loads from the database is the same posture.
    (snapshot,) = load_snapshots(server.database)
    assert snapshot.updates_security == 1 and snapshot.spool_dropped_reports == 5
    assert snapshot.score_weight is not None and snapshot.score_weight > 0


def test_metrics_bearer_token(live_servers: LiveServers) -> None:
    server = live_servers.start(metrics_bearer_sha256=hashlib.sha256(b"scrape-me").hexdigest())
    refused = requests.get(f"{server.url}/metrics", timeout=TIMEOUT)
    assert refused.status_code == 401
    assert refused.headers["WWW-Authenticate"] == "Bearer"
    assert refused.json()["error"]["code"] == "metrics_unauthorized"
    assert "canhgac_" not in refused.text
    wrong = requests.get(
        f"{server.url}/metrics", headers={"Authorization": "Bearer nope"}, timeout=TIMEOUT
    )
    assert wrong.status_code == 401
    ok = requests.get(
        f"{server.url}/metrics", headers={"Authorization": "Bearer scrape-me"}, timeout=TIMEOUT
    )
    assert ok.status_code == 200 and "canhgac_build_info" in ok.text
    # /healthz stays open: load balancers do not carry the metrics credentials.
    assert requests.get(f"{server.url}/healthz", timeout=TIMEOUT).status_code == 200


def test_metrics_basic_auth(live_servers: LiveServers) -> None:
    server = live_servers.start(
        metrics_basic_user="prometheus",
        metrics_basic_password_sha256=hashlib.sha256(b"pw").hexdigest(),
    )
    good = base64.b64encode(b"prometheus:pw").decode()
    bad = base64.b64encode(b"prometheus:px").decode()
    headers = {"Authorization": f"Basic {good}"}
    assert requests.get(f"{server.url}/metrics", headers=headers, timeout=TIMEOUT).ok
    headers = {"Authorization": f"Basic {bad}"}
    refused = requests.get(f"{server.url}/metrics", headers=headers, timeout=TIMEOUT)
    assert refused.status_code == 401 and refused.headers["WWW-Authenticate"] == "Basic"
