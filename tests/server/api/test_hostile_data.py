"""Hostile strings through ingest, the read API and /metrics (issue 14).

A report whose free text holds terminal escapes, bidi overrides, newlines, markup,
spreadsheet formula prefixes, unusual Unicode and long strings is accepted where the
schema allows it, stored faithfully (the read API gives back exactly what was sent),
and comes out of /metrics as a label value without control characters that a
Prometheus parser reads as one sample (no line can be forged). Real app under uvicorn, real database.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from tests.server.conftest import LiveServer
from tests.server.helpers import body_of, make_facts, new_api_token, new_token, telnet

CORPUS = [
    "web\x1b[2J\x1b[31mred",
    "web\u202eevil\u2066x\u2069",
    'web\nfake_metric{host="x"} 1',
    "<script>alert(1)</script>",
    '=HYPERLINK("http://x")',
    "+cmd|' /C calc'!A0",
    "m\u00e1y-ch\u1ee7-\U0001f600-\u0000".replace("\u0000", "z"),
    "h" * 255,
]


@pytest.mark.parametrize("hostname", CORPUS)
def test_hostile_hostname_is_stored_faithfully_and_exported_inert(
    live_server: LiveServer, hostname: str
) -> None:
    facts = make_facts(
        collected_at=datetime.now(UTC) - timedelta(minutes=1),
        hostname=hostname,
        listening=[{**telnet(), "process": hostname[:64]}],
    )
    token = new_token(live_server.database)
    answer = requests.post(
        f"{live_server.url}/api/v1/reports",
        data=body_of(facts),
        headers={"Authorization": f"Bearer {token}"},
        timeout=60,
    )
    assert answer.status_code == 200, answer.text
    viewer = {"Authorization": f"Bearer {new_api_token(live_server.database)}"}
    host = requests.get(f"{live_server.url}/api/v1/hosts/agent-1", headers=viewer, timeout=30)
    assert host.status_code == 200
    assert host.headers["content-type"].startswith("application/json")
    assert host.json()["hostname"] == hostname

    metrics = requests.get(f"{live_server.url}/metrics", timeout=30)
    assert metrics.status_code == 200
    families = list(text_string_to_metric_families(metrics.text))
    hosts = {
        sample.labels.get("host")
        for family in families
        for sample in family.samples
        if "host" in sample.labels
    }
    # The exporter may drop control characters and shorten labels (its own rule);
    # what must hold is that the host is there and nothing in a label is a control.
    assert len(hosts) == 1
    (label,) = hosts
    assert label
    assert not any(ch in label for ch in "\x1b\n\r\x00")
    assert "fake_metric" not in {family.name for family in families}
