"""The enrolment an agency administrator does, with real processes end to end:
`agency add` and `agency enrol-secret` on the collector, `canhgac-agent enroll` on the
host, then `canhgac-agent run --once` with no token option at all."""

from __future__ import annotations

import socket
import stat
import subprocess
from pathlib import Path

import requests
from prometheus_client.parser import text_string_to_metric_families

from .conftest import BIN, run

AGENCY = "so-enrol-e2e"


def server(*argv: str, db_url: str) -> str:
    return run(str(BIN / "canhgac-server"), *argv, "--db", db_url).stdout


def agent(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "canhgac-agent"), *argv],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_enrol_then_report_without_a_token_option(
    collector: tuple[str, str], tmp_path: Path
) -> None:
    url, db_url = collector
    server("agency", "add", AGENCY, "--name", "Sở kiểm thử", db_url=db_url)
    secret = server("agency", "enrol-secret", AGENCY, db_url=db_url).strip().splitlines()[-1]
    assert secret.startswith("cge_")
    secret_file = tmp_path / "secret"
    secret_file.write_text(secret + "\n")
    state = tmp_path / "agent-state"

    enrolled = agent(
        "enroll",
        "--server",
        url,
        "--secret-file",
        str(secret_file),
        "--state-dir",
        str(state),
        "--lang",
        "en",
    )
    assert enrolled.returncode == 0, enrolled.stderr
    assert f"of agency {AGENCY}" in enrolled.stdout
    token_file = state / "agent.token"
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    assert token_file.read_text().startswith("cgt_")
    assert secret not in enrolled.stdout + enrolled.stderr

    again = agent(
        "enroll", "--server", url, "--secret-file", str(secret_file), "--state-dir", str(state)
    )
    assert again.returncode == 2
    assert "--force" in again.stderr

    # the collector refuses a second token for an agent that has an active one
    forced = agent(
        "enroll",
        "--server",
        url,
        "--secret-file",
        str(secret_file),
        "--state-dir",
        str(state),
        "--force",
        "--lang",
        "en",
    )
    assert forced.returncode == 1
    assert "enrolment failed: the server refused" in forced.stderr
    assert "already_enrolled" in forced.stderr
    assert token_file.read_text().startswith("cgt_")  # the saved token is untouched

    shipped = agent("run", "--once", "--server", url, "--state-dir", str(state), "--lang", "en")
    assert shipped.returncode == 0, shipped.stderr
    assert "accepted" in shipped.stdout

    metrics = requests.get(f"{url}/metrics", timeout=5).text
    hosts = [
        s.labels
        for f in text_string_to_metric_families(metrics)
        for s in f.samples
        if s.name == "canhgac_host_info"
    ]
    assert any(h["agency"] == AGENCY and h["host"] == socket.gethostname() for h in hosts)


def test_wrong_secret_is_a_clear_refusal(collector: tuple[str, str], tmp_path: Path) -> None:
    url, _ = collector
    secret_file = tmp_path / "secret"
    secret_file.write_text("cge_nosuchid00_" + "x" * 43 + "\n")
    refused = agent(
        "enroll",
        "--server",
        url,
        "--secret-file",
        str(secret_file),
        "--state-dir",
        str(tmp_path / "s"),
        "--lang",
        "en",
    )
    assert refused.returncode == 1
    assert "enrolment failed: the server refused" in refused.stderr
    assert "HTTP 401" in refused.stderr
    assert not (tmp_path / "s" / "agent.token").exists()
