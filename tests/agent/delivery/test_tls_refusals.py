"""A collector whose certificate must not be trusted: the spool refuses to send, keeps
the report and says why in the administrator's language.

Real TLS on loopback (the collector stub, stdlib `http.server` wrapped in an
`ssl.SSLContext`) with certificates made here by one CA: a valid one (the control: the
same CA and server deliver), an expired one, and one issued for another host name. The
wrong-CA case is in test_spool.py.
"""

from __future__ import annotations

import datetime as dt
import ssl
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from agent.delivery.spool import Outcome, Spool, SpoolLimits
from agent.delivery.transport import HttpTransport
from agent.output.messages import shipping_message
from tests.agent.certs import Made, ec_key, make
from tests.agent.collector_stub import serve

FAST = SpoolLimits(min_spacing_seconds=0.0, backoff_base_seconds=10.0)


@dataclass(frozen=True)
class Served:
    url_host: str  # the host name the agent is configured with
    cert: Made


def _document() -> dict[str, Any]:
    return {
        "schema": "canhgac.facts/v1",
        "report_id": str(uuid.uuid4()),
        "agent_id": "tls-test",
        "seq": 1,
        "collected_at": "2026-01-01T00:00:00Z",
        "agent_version": "0.1.0",
        "errors": [],
    }


def _server_context(served: Made, directory: Path) -> ssl.SSLContext:
    cert_file, key_file = directory / "server.pem", directory / "server.key"
    cert_file.write_bytes(served.pem())
    key_file.write_bytes(served.key_pem())
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_file, key_file)
    return context


def _cases(now: dt.datetime) -> tuple[Made, dict[str, Served]]:
    ca = make("canhgac test CA", key=ec_key(), ca=True, not_before=now - dt.timedelta(days=1))
    day = dt.timedelta(days=1)

    def issued(**kwargs: Any) -> Made:
        return make("collector", issuer=ca, **kwargs)

    return ca, {
        "valid": Served("127.0.0.1", issued(ips=("127.0.0.1",), not_before=now - day)),
        "expired": Served(
            "127.0.0.1",
            issued(ips=("127.0.0.1",), not_before=now - 30 * day, not_after=now - day),
        ),
        # Configured as https://localhost:PORT; the certificate names another host.
        "wrong host name": Served(
            "localhost", issued(dns=("collector.example.gov.vn",), not_before=now - day)
        ),
    }


@pytest.mark.parametrize(
    ("case", "cause"),
    [
        ("valid", None),
        ("expired", "certificate has expired"),
        ("wrong host name", "Hostname mismatch"),
    ],
)
def test_an_untrustworthy_collector_is_refused_and_the_report_kept(
    tmp_path: Path, case: str, cause: str | None
) -> None:
    ca, cases = _cases(dt.datetime.now(dt.UTC))
    served = cases[case]
    ca_file = tmp_path / "ca.pem"
    ca_file.write_bytes(ca.pem())
    with serve(_server_context(served.cert, tmp_path)) as stub:
        url = stub.url.replace("127.0.0.1", served.url_host)
        spool = Spool(tmp_path / "state", HttpTransport(url, "t", ca_file=ca_file), FAST)
        spool.put(_document())
        result = spool.drain()
    (attempt,) = result.attempts
    if cause is None:
        assert attempt.outcome is Outcome.DELIVERED and spool.count() == 0
        assert len(stub.requests) == 1
        return
    assert attempt.outcome is Outcome.RETRY
    assert spool.count() == 1 and spool.quarantined() == []  # kept, to be sent later
    assert stub.requests == []  # nothing, token included, reached that server
    error = attempt.error
    assert error is not None and error.reason == "tls" and cause in error.detail
    english = shipping_message(error, "en")
    assert english.startswith(f"delivery failed: TLS verification of {url}")
    assert cause in english
    vietnamese = shipping_message(error, "vi")
    assert vietnamese.startswith("gửi báo cáo thất bại: không xác minh được chứng thư số TLS")
    assert "chứng chỉ" not in vietnamese  # one term for certificate
