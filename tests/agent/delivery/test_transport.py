"""Shipping reports over HTTP(S) to a real server on loopback."""

from __future__ import annotations

import gzip
import json
import os
from pathlib import Path
from typing import Any

import pytest

from agent.delivery.transport import Delivery, HttpTransport, check_server_url, check_token
from agent.errors import ConfigError, ShippingError
from tests.agent.collector_stub import make_pki, serve
from tests.support import free_port

DOCUMENT: dict[str, Any] = {
    "schema": "canhgac.facts/v1",
    "report_id": "0b7c2f0e-8f0a-4d55-9a0c-6c1b1f2e3d4a",
    "agent_id": "test-agent",
    "seq": 3,
    "collected_at": "2026-01-01T00:00:00Z",
    "agent_version": "0.1.0",
    "host": {"hostname": "trâm-01"},
    "errors": [],
}


def test_posts_gzip_json_with_bearer_token_over_verified_tls(tmp_path: Path) -> None:
    pki = make_pki(tmp_path)
    with serve(pki.server_context) as stub:
        delivery = HttpTransport(stub.url + "/", "s3cr3t-token", ca_file=pki.ca_file).send(DOCUMENT)
    assert delivery == Delivery(
        status="accepted", report_id=DOCUMENT["report_id"], duplicate=False, score=0.875, failing=2
    )
    (request,) = stub.requests
    assert request.path == "/api/v1/reports"
    assert request.headers["Authorization"] == "Bearer s3cr3t-token"
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["Content-Encoding"] == "gzip"
    assert request.document() == DOCUMENT
    assert len(request.body) == int(request.headers["Content-Length"])


def test_unknown_ca_fails_verification(tmp_path: Path) -> None:
    pki = make_pki(tmp_path)
    with (
        serve(pki.server_context) as stub,
        pytest.raises(ShippingError, match="TLS verification") as caught,
    ):
        HttpTransport(stub.url, "t").send(DOCUMENT)  # system CAs only
    assert caught.value.status is None
    assert stub.requests == []  # nothing reached the application


def test_error_body_is_surfaced() -> None:
    with serve() as stub:
        stub.status = 401
        stub.answer = {
            "error": {"code": "invalid_token", "message": "the bearer token is not valid"}
        }
        with pytest.raises(ShippingError) as caught:
            HttpTransport(stub.url, "wrong").send(DOCUMENT)
    error = caught.value
    assert (error.status, error.code, error.server_message) == (
        401,
        "invalid_token",
        "the bearer token is not valid",
    )
    assert (error.reason, error.detail) == (
        "rejected",
        "HTTP 401 invalid_token: the bearer token is not valid",
    )
    assert "HTTP 401 invalid_token: the bearer token is not valid" in str(error)


def test_validation_error_names_the_field() -> None:
    with serve() as stub:
        stub.status = 422
        stub.answer = {
            "error": {"code": "schema_violation", "message": "must be integer", "field": "seq"}
        }
        with pytest.raises(ShippingError, match=r"\(field seq\)") as caught:
            HttpTransport(stub.url, "t").send(DOCUMENT)
    assert caught.value.field == "seq"


@pytest.mark.parametrize(
    ("status", "code"),
    [
        (401, "missing_token"),
        (413, "body_too_large"),
        (400, "invalid_gzip"),
        (403, "token_bound_to_other_agent"),
    ],
)
def test_server_error_codes_are_carried(status: int, code: str) -> None:
    with serve() as stub:
        stub.status = status
        stub.answer = {"error": {"code": code, "message": "refused"}}
        with pytest.raises(ShippingError) as caught:
            HttpTransport(stub.url, "t").send(DOCUMENT)
    assert (caught.value.status, caught.value.code) == (status, code)


def test_netrc_and_proxy_variables_are_ignored(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # requests would let ~/.netrc replace the Authorization header and *_PROXY reroute.
    (tmp_path / ".netrc").write_text("machine 127.0.0.1 login evil password stolen\n")
    os.chmod(tmp_path / ".netrc", 0o600)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("NETRC", str(tmp_path / ".netrc"))
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")
    monkeypatch.setenv("NO_PROXY", "")
    with serve() as stub:
        HttpTransport(stub.url, "the-real-token").send(DOCUMENT)
    (request,) = stub.requests
    assert request.headers["Authorization"] == "Bearer the-real-token"


def test_non_json_error_body() -> None:
    with serve() as stub:
        stub.status = 502
        stub.answer = b"<html>Bad Gateway</html>"
        with pytest.raises(ShippingError, match="HTTP 502") as caught:
            HttpTransport(stub.url, "t").send(DOCUMENT)
    assert caught.value.code is None


def test_redirects_are_not_followed() -> None:
    with serve() as stub:
        stub.status = 307
        stub.extra_headers = {"Location": "http://127.0.0.1:9/elsewhere"}
        stub.answer = {}
        with pytest.raises(ShippingError, match="HTTP 307"):
            HttpTransport(stub.url, "t").send(DOCUMENT)
    assert len(stub.requests) == 1


def test_duplicate_receipt() -> None:
    with serve() as stub:
        stub.answer = {
            "status": "duplicate",
            "report_id": "r",
            "duplicate": True,
            "score": None,
            "failing": 0,
        }
        delivery = HttpTransport(stub.url, "t").send(DOCUMENT)
    assert (delivery.status, delivery.duplicate, delivery.score) == ("duplicate", True, None)


@pytest.mark.parametrize(
    "answer",
    [
        {"status": "accepted"},
        {"status": 1, "report_id": "r"},
        [],
        {"status": "accepted", "report_id": "r", "score": "high"},
    ],
)
def test_malformed_receipt_is_an_error(answer: Any) -> None:
    with serve() as stub:
        stub.answer = answer
        with pytest.raises(ShippingError, match="unexpected answer"):
            HttpTransport(stub.url, "t").send(DOCUMENT)


def test_unreachable_server() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(ShippingError, match="cannot reach") as caught:
        HttpTransport(url, "t", timeout=5).send(DOCUMENT)
    assert caught.value.status is None


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://collector.example.gov.vn", "plain HTTP"),
        ("http://192.0.2.1:8080", "plain HTTP"),
        ("ftp://127.0.0.1", "expected https"),
        ("127.0.0.1:8443", "expected https"),
        ("https://host/?x=1", "query"),
        ("https://[::1", "invalid server URL"),
        ("https://collector:port", "invalid server URL"),
    ],
)
def test_unsafe_or_invalid_urls_are_refused_before_any_connection(url: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        HttpTransport(url, "t")


def test_loopback_http_is_allowed() -> None:
    assert check_server_url("http://localhost:8000/") == "http://localhost:8000"
    assert check_server_url("http://[::1]:8000") == "http://[::1]:8000"
    assert check_server_url("https://c.example.gov.vn/base") == "https://c.example.gov.vn/base"


def test_tokens_are_trimmed_and_must_be_one_printable_word() -> None:
    assert check_token("  abc.def\n") == "abc.def"
    for bad in ["", "  \n", "a b", "a\r\nX-Injected: 1"]:
        with pytest.raises(ConfigError):
            check_token(bad)


def test_missing_ca_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="CA file"):
        HttpTransport("https://127.0.0.1:1", "t", ca_file=tmp_path / "none.pem")


def test_body_is_really_compressed() -> None:
    big = {**DOCUMENT, "listening": [{"protocol": "tcp", "port": p} for p in range(2000)]}
    with serve() as stub:
        HttpTransport(stub.url, "t").send(big)
    (request,) = stub.requests
    assert len(request.body) < len(json.dumps(big)) / 5
    assert json.loads(gzip.decompress(request.body)) == big
