"""Bug fixture (issue 13): an expired self-signed certificate FILE marked CA:TRUE,
what `openssl req -x509` makes by default, is judged by CERT-EXPIRED.

The certificate is made by the real `openssl` here; the real collector reads it, the
document builder derives `days_left` as of a collection time after its expiry (the
clock is the one thing moved: openssl 3.0 cannot back-date), and the shipped rules
judge it. Only the system trust stores stay out: the same file under /etc/ssl/certs is
not reported at all.
"""

from __future__ import annotations

import datetime as dt
import subprocess
from pathlib import Path

from agent.collectors.base import CollectContext, CollectSettings
from agent.document import collect_facts
from agent.state.identity import Identity
from rules.engine import evaluate_rule
from rules.facts import Domain
from rules.language.loader import builtin_packs_dir, load_rules
from rules.results import Status
from tests.agent.fakes import FakeSystem, RecordedRunner
from tests.support import require_tool


def _openssl_self_signed(openssl: str, out: Path, workdir: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [
            openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "30",
            "-subj", "/CN=noibo.example.gov.vn",
            "-keyout", str(workdir / "key.pem"), "-out", str(out),
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip


def _collect(root: Path, now: dt.datetime) -> dict[str, object]:
    ctx = CollectContext(
        root=root,
        run=RecordedRunner(),
        system=FakeSystem(),
        settings=CollectSettings(probe_listeners=False),
        now=lambda: now,
    )
    return collect_facts(ctx, Identity("t", 1), domains=[Domain.CERTIFICATES], now=lambda: now)


def test_expired_openssl_req_x509_file_fails_cert_expired(tmp_path: Path) -> None:
    openssl = require_tool("openssl")
    root = tmp_path / "root"
    _openssl_self_signed(openssl, root / "etc/nginx/ssl/noibo.crt", tmp_path)
    # the same kind of file inside the system trust store is never a fact
    _openssl_self_signed(openssl, root / "etc/ssl/certs/local-root.crt", tmp_path)
    later = dt.datetime.now(dt.UTC) + dt.timedelta(days=40)
    document = _collect(root, later)
    items = document["certificates"]
    assert isinstance(items, list)
    assert [item["location"] for item in items] == ["/etc/nginx/ssl/noibo.crt#0"]
    (item,) = items
    assert item["is_ca"] is True and item["self_signed"] is True  # openssl's default
    assert item["days_left"] < 0

    rules = load_rules([builtin_packs_dir()])
    expired = rules.get("CERT-EXPIRED")
    assert expired is not None
    result = evaluate_rule(expired, document)
    assert result.status is Status.FAIL
    assert [i.key for i in result.items] == ["/etc/nginx/ssl/noibo.crt#0"]

    # and before it expires, inside the critical window, the expiry rules say so
    soon = _collect(root, dt.datetime.now(dt.UTC) + dt.timedelta(days=26))
    critical = rules.get("CERT-EXPIRY-CRITICAL")
    assert critical is not None
    assert evaluate_rule(critical, soon).status is Status.FAIL
    assert evaluate_rule(expired, soon).status is Status.PASS
