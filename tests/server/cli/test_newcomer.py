"""What a newcomer trips on, fixed: `serve` on a taken port, its listening banner,
`api-token list` LAST USED, `rules reload` saying whether the policy changed, and
configuration files that cannot be read as YAML."""

from __future__ import annotations

import functools
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests
from click.testing import CliRunner

from server.auth.api_tokens import LAST_USED_RESOLUTION, authenticate_api_token
from server.cli.main import main
from server.storage.database import Database
from server.storage.models import ApiToken
from tests.collector_process import running_collector
from tests.server.conftest import LiveServer
from tests.server.helpers import RULES_DIR, new_api_token
from tests.support import require

ROOT = Path(__file__).resolve().parents[3]
SERVE = [sys.executable, "-c", "from server.cli.main import main; main()", "serve"]


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def taken_port() -> Iterator[int]:
    """A loopback port held by another program (this test) for the test's duration."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        yield int(holder.getsockname()[1])


# serve -------------------------------------------------------------------------------


def test_serve_on_a_taken_port_says_so_before_anything_else(
    tmp_path: Path, taken_port: int
) -> None:
    database = tmp_path / "canhgac.db"
    completed = subprocess.run(
        [*SERVE, "--listen", f"127.0.0.1:{taken_port}", "--db", f"sqlite:///{database}"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        check=False,
    )
    assert completed.returncode == 1
    assert completed.stderr.splitlines() == [
        f"Error: cannot listen on 127.0.0.1:{taken_port}: the address is already in use"
        " (another collector or another program holds the port); stop it or choose"
        " another with --listen"
    ]
    assert "listening on" not in completed.stderr + completed.stdout
    assert not database.exists()  # bound before migrating: nothing was created


def test_serve_prints_its_banner_only_once_it_serves(tmp_path: Path) -> None:
    with running_collector(
        "--db",
        f"sqlite:///{tmp_path / 'canhgac.db'}",
        "--rules",
        str(RULES_DIR),
        "--log-level",
        "warning",
        log_dir=tmp_path,
        wait=False,  # this test watches for the banner instead
    ) as collector:
        deadline = time.monotonic() + 30
        while "listening on" not in (log := collector.log()):
            if collector.process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"no banner; serve exited with {collector.process.poll()}:\n{log}")
            time.sleep(0.05)
        [banner] = [line for line in log.splitlines() if "listening on" in line]
        assert f"listening on {collector.url}" in banner and "3 rules" in banner
        # The banner comes after the socket serves: the first request already answers.
        assert requests.get(f"{collector.url}/healthz", timeout=5).status_code == 200
        assert collector.stop(signal.SIGINT) == 0, collector.log()


# api-token list: LAST USED -----------------------------------------------------------


def _last_used(database: Database) -> datetime | None:
    with database.session() as session:
        (row,) = session.query(ApiToken).all()
        return row.last_used_at


def test_api_token_last_used_is_written_by_the_real_api(live_server: LiveServer) -> None:
    token = new_api_token(live_server.database)
    db_url = live_server.config.database_url
    code, listing, _ = run("api-token", "list", "--db", db_url)
    assert code == 0 and listing.splitlines()[1].split()[-2] == "-"  # never used yet

    before = datetime.now(UTC).replace(microsecond=0)
    headers = {"Authorization": f"Bearer {token}"}
    assert requests.get(f"{live_server.url}/api/v1/hosts", headers=headers, timeout=10).ok
    first = _last_used(live_server.database)
    assert first is not None and first >= before

    # Throttled: another request within the minute reads, it does not write again.
    assert requests.get(f"{live_server.url}/api/v1/hosts", headers=headers, timeout=10).ok
    assert _last_used(live_server.database) == first

    code, listing, _ = run("api-token", "list", "--db", db_url)
    assert code == 0
    assert first.strftime("%Y-%m-%dT%H:%M:%SZ") in listing.splitlines()[1]

    # A refused token is not stamped.
    wrong = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    answer = requests.get(
        f"{live_server.url}/api/v1/hosts",
        headers={"Authorization": f"Bearer {wrong}"},
        timeout=10,
    )
    assert answer.status_code == 401
    assert _last_used(live_server.database) == first


def _at(moment: datetime) -> datetime:
    return moment


def test_last_used_is_written_again_after_the_resolution(database: Database) -> None:
    token = new_api_token(database)
    start = datetime(2026, 5, 1, 8, 0, tzinfo=UTC)
    moments = [
        start,
        start + timedelta(seconds=30),
        start + LAST_USED_RESOLUTION + timedelta(seconds=1),
    ]
    seen = []
    for moment in moments:
        authenticate_api_token(database, token, clock=functools.partial(_at, moment))
        seen.append(_last_used(database))
    assert seen == [moments[0], moments[0], moments[2]]


# rules reload ------------------------------------------------------------------------


def test_rules_reload_says_whether_the_policy_changed(tmp_path: Path) -> None:
    db_url = f"sqlite:///{tmp_path / 'canhgac.db'}"
    config = tmp_path / "config.yaml"
    config.write_text(f"server:\n  rules: [{RULES_DIR}]\n", "utf-8")
    code, first, _ = run("rules", "reload", "--db", db_url, "--config", str(config))
    assert code == 0
    match = re.fullmatch(
        r"policy ([0-9a-f]{12}) \(no re-evaluation recorded before\); re-evaluated 0 host\(s\)\n",
        first,
    )
    assert match, first
    fingerprint = match.group(1)
    code, again, _ = run("rules", "reload", "--db", db_url, "--config", str(config))
    assert code == 0
    assert again == (
        f"policy {fingerprint} unchanged since the last re-evaluation;"
        " re-evaluated 0 host(s) (every host was already up to date)\n"
    )
    code, changed, _ = run("rules", "reload", "--db", db_url)  # the built-in packs
    assert code == 0
    assert re.fullmatch(
        rf"policy changed: {fingerprint} -> [0-9a-f]{{12}}; re-evaluated 0 host\(s\)\n", changed
    ), changed


# configuration files -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"server:\n  listen: [unclosed\n", r":3:1: invalid YAML: while parsing a flow sequence"),
        (b"server:\n\tlisten: x\n", r":2:1: invalid YAML: .*found character '\\t'"),
        (b"server:\n  db_url: caf\xe9\n", r":2:14: not UTF-8 text \(byte 0xe9\)"),
    ],
)
def test_unreadable_config_is_one_line_and_exit_2(
    tmp_path: Path, content: bytes, expected: str
) -> None:
    config = tmp_path / "config.yaml"
    config.write_bytes(content)
    code, _, err = run("token", "list", "--config", str(config))
    assert code == 2
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"Error: {config}:"), err
    assert re.search(expected, lines[0]), lines[0]
    assert "\\x0a" not in err and "Traceback" not in err


def test_a_fifo_config_is_refused_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "config.fifo"
    os.mkfifo(fifo)
    code, _, err = run("db", "upgrade", "--config", str(fifo))
    assert code == 2 and "is not a regular file" in err


# make demo ---------------------------------------------------------------------------


def test_demo_on_a_taken_port_says_so(tmp_path: Path, taken_port: int) -> None:
    require((ROOT / ".venv" / "bin" / "canhgac-server").exists(), "no .venv to run the demo")
    completed = subprocess.run(
        ["bash", str(ROOT / "packaging" / "demo.sh")],
        capture_output=True,
        text=True,
        timeout=120,
        env={
            **os.environ,
            "CANHGAC_DEMO_LISTEN": f"127.0.0.1:{taken_port}",
            "CANHGAC_DEMO_DIR": str(tmp_path / "demo"),
        },
        check=False,
    )
    assert completed.returncode == 1
    assert f"cannot listen on 127.0.0.1:{taken_port}: Address already in use" in completed.stderr
    assert "CANHGAC_DEMO_LISTEN=" in completed.stderr
    assert "enrolling" not in completed.stdout and "secret" not in completed.stderr
    assert not (tmp_path / "demo" / "server.pid").exists()
