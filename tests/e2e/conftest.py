"""Fixtures of the end-to-end tests: real collector and agent processes on loopback."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.support import free_port

BIN = Path(sys.executable).parent
PACK = Path(__file__).resolve().parents[1] / "data" / "e2e" / "risky-port.yaml"


def run(*argv: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, f"{argv[0]} failed: {done.stdout}\n{done.stderr}"
    return done


@pytest.fixture
def risky_listener() -> Iterator[socket.socket]:
    # Listening on every address is what makes the port "exposed"; the test never
    # connects to it, and no traffic leaves the machine.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("0.0.0.0", 2323))
    sock.listen()
    yield sock
    sock.close()


@pytest.fixture
def collector(tmp_path: Path) -> Iterator[tuple[str, str]]:
    port = free_port()
    db_url = f"sqlite:///{tmp_path / 'canhgac.db'}"
    log = (tmp_path / "server.log").open("w")
    process = subprocess.Popen(
        [
            str(BIN / "canhgac-server"),
            "serve",
            "--listen",
            f"127.0.0.1:{port}",
            "--db",
            db_url,
            "--rules",
            str(PACK),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            assert process.poll() is None, (tmp_path / "server.log").read_text()
            try:
                if requests.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            assert time.monotonic() < deadline, "collector did not become healthy"
            time.sleep(0.1)
        yield url, db_url
    finally:
        process.terminate()
        process.wait(timeout=15)
        log.close()


def create_token(db_url: str, agency: str, directory: Path) -> Path:
    """`canhgac-server token create` for real; the token goes to a 0600 file."""
    out = run(str(BIN / "canhgac-server"), "token", "create", "--db", db_url, "--agency", agency)
    token_file = directory / "token"
    token_file.write_text(out.stdout.strip().splitlines()[-1] + "\n")
    token_file.chmod(0o600)
    return token_file


def run_agent_once(url: str, token_file: Path, state_dir: Path) -> subprocess.CompletedProcess[str]:
    return run(
        str(BIN / "canhgac-agent"),
        "run",
        "--once",
        "--server",
        url,
        "--token-file",
        str(token_file),
        "--state-dir",
        str(state_dir),
    )
