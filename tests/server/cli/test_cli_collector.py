"""`canhgac-server` commands of the collector issue: agencies, enrolment secrets,
agents, API tokens, CLI hygiene (-h, exit codes, no secret echoed), TLS and mTLS."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from click.testing import CliRunner

from server.auth.agent_tokens import create_token
from server.cli.main import main
from server.clock import utc_now
from server.storage.database import open_database
from server.storage.models import AgentToken
from tests.collector_process import CollectorTLS, running_collector
from tests.server.helpers import RULES_DIR, body_of, make_facts
from tests.server.tls import Pki, make_pki

SECRET_RE = re.compile(r"^(cg[aegt])_[a-z2-7]{10}_[A-Za-z0-9_-]{43}$", re.MULTILINE)


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_agency_add_list_and_enrol_secret(db_url: str) -> None:
    assert run("agency", "add", "so-a", "--name", "Sở A", "--db", db_url)[0] == 0
    code, out, _ = run("agency", "list", "--db", db_url)
    assert code == 0 and "so-a" in out and "Sở A" in out and "none" in out
    code, out, err = run("agency", "enrol-secret", "so-a", "--expires", "30d", "--db", db_url)
    assert code == 0, err
    [secret] = [m.group(0) for m in SECRET_RE.finditer(out)]
    assert secret.startswith("cge_") and "shown only once" in err
    code, listing, _ = run("agency", "list", "--db", db_url)
    assert "until " in listing and secret.split("_", 2)[2] not in listing
    code, _, err = run("agency", "enrol-secret", "so-nope", "--db", db_url)
    assert code == 2 and "no agency" in err
    code, _, err = run("agency", "enrol-secret", "so-a", "--expires", "soon", "--db", db_url)
    assert code == 2 and "--expires" in err


def test_agent_revoke(db_url: str) -> None:
    code, _, err = run("agent", "revoke", "agent-1", "--db", db_url)
    assert code == 1 and "no agent" in err
    database = open_database(db_url)
    try:
        with database.write() as session:
            info, _ = create_token(session, "so-a", "web01", utc_now, agent_id="agent-1")
        code, out, _ = run("agent", "revoke", "agent-1", "--db", db_url)
        assert code == 0 and info.token_id in out
        with database.session() as session:
            row = session.get(AgentToken, info.token_id)
            assert row is not None and row.revoked_at is not None
    finally:
        database.dispose()


def test_api_tokens(db_url: str) -> None:
    code, out, err = run(
        "api-token", "create", "--name", "grafana", "--role", "viewer", "--db", db_url
    )
    assert code == 0, err
    [token] = [m.group(0) for m in SECRET_RE.finditer(out)]
    assert token.startswith("cga_")
    code, listing, _ = run("api-token", "list", "--db", db_url)
    assert "grafana" in listing and "viewer" in listing and token.split("_", 2)[2] not in listing
    code, out, _ = run("api-token", "revoke", token, "--db", db_url)
    assert code == 0 and token.split("_", 2)[2] not in out
    assert "revoked" in run("api-token", "list", "--db", db_url)[1]
    assert run("api-token", "create", "--name", "x", "--role", "root", "--db", db_url)[0] == 2


def test_token_revoke_takes_the_whole_token_and_never_echoes_it(db_url: str) -> None:
    _, out, _ = run("token", "create", "--db", db_url, "--agency", "so-a")
    token = out.strip()
    code, out, err = run("token", "revoke", "--db", db_url, token)
    assert code == 0
    assert out.strip() == f"token {token.split('_')[1]} revoked"
    unknown = "cgt_aaaaaaaaaa_" + "S" * 43
    code, out, err = run("token", "revoke", "--db", db_url, unknown)
    assert code == 1 and "S" * 43 not in out + err


@pytest.mark.parametrize(
    "url",
    [
        "postgresql+psycopg://u:p@127.0.0.1:1/nodb",
        "postgresql+psycopg://u:p@127.0.0.1:99999/nodb",
        "postgresql+psycopg://u:p@127.0.0.1:notaport/nodb",
    ],
)
def test_a_bad_db_url_is_one_line(url: str) -> None:
    code, _, err = run("token", "list", "--db", url)
    assert code == 1
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert "p@" not in err  # the password is not printed


@pytest.mark.parametrize("args", [(), ("agency",), ("db",), ("serve",), ("api-token", "create")])
def test_dash_h_is_help(args: tuple[str, ...]) -> None:
    code, out, _ = run(*args, "-h")
    assert code == 0 and "Usage:" in out


def test_usage_errors_exit_2() -> None:
    assert run("no-such-command")[0] == 2
    assert run("token", "create")[0] == 2  # --agency missing
    assert run("agency", "add", "so-a")[0] == 2  # --name missing


def test_serve_no_migrate_refuses_an_old_schema(db_url: str) -> None:
    code, _, err = run("serve", "--no-migrate", "--db", db_url, "--rules", str(RULES_DIR))
    assert code == 1 and "db upgrade" in err


def test_tls_options_go_together(tmp_path: Path, db_url: str) -> None:
    pki = make_pki(tmp_path)
    code, _, err = run("serve", "--db", db_url, "--tls-cert", str(pki.server_cert))
    assert code == 1 and "tls_key" in err


@pytest.fixture
def tls_server(tmp_path: Path, db_url: str) -> Iterator[tuple[str, str, Pki]]:
    """A real `serve` over HTTPS requiring client certificates, on a non-loopback-safe
    configuration (TLS given, so no --allow-plain-http)."""
    pki = make_pki(tmp_path)
    _, out, _ = run("token", "create", "--db", db_url, "--agency", "so-a")
    tls = CollectorTLS(
        cert=pki.server_cert,
        key=pki.server_key,
        ca=pki.ca,
        client_ca=pki.ca,
        client_cert=pki.client_cert,
        client_key=pki.client_key,
    )
    with running_collector(
        "--db",
        db_url,
        "--rules",
        str(RULES_DIR),
        "--log-level",
        "warning",
        tls=tls,
        log_dir=tmp_path,
    ) as collector:
        yield collector.url, out.strip(), pki


def test_https_with_mutual_tls(tls_server: tuple[str, str, Pki]) -> None:
    base, token, pki = tls_server
    ca = str(pki.ca)
    client = (str(pki.client_cert), str(pki.client_key))
    response = requests.post(
        f"{base}/api/v1/reports",
        data=body_of(make_facts()),
        headers={"Authorization": f"Bearer {token}"},
        verify=ca,
        cert=client,
        timeout=30,
    )
    assert response.status_code == 200, response.text
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(f"{base}/healthz", timeout=10)  # the private CA is not trusted
    with pytest.raises((requests.exceptions.SSLError, requests.ConnectionError)):
        requests.get(f"{base}/healthz", verify=ca, timeout=10)  # no client certificate
