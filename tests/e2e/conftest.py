"""Fixtures of the end-to-end tests: real collector and agent processes on loopback."""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.collector_process import running_collector
from tests.server import pg

# The fixture: every test taking `db_url` runs on SQLite and on PostgreSQL.
db_url = pg.db_url
BIN = Path(sys.executable).parent
RISKY_RULE = "E2E-RISKY-PORT-EXPOSED"


def run(*argv: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, f"{argv[0]} failed: {done.stdout}\n{done.stderr}"
    return done


@pytest.fixture
def risky_listener() -> Iterator[socket.socket]:
    """A TCP listener on every address, on a port the system chose: "exposed".

    The test owns it and never accepts. The agent does connect to it: its certificate
    collector probes every local TCP listener (agent.probe_listeners, on by default) on
    loopback; the handshake gets no answer and ends at the probe's timeout. Nothing
    leaves the machine; `getsockname()[1]` is the port the rule pack names.
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("0.0.0.0", 0))
    sock.listen()
    yield sock
    sock.close()


def risky_port_pack(port: int) -> dict[str, Any]:
    """The end-to-end rule pack: `port` plays a risky service (high, fails while the
    listener is open) and tcpmux, port 1, one nobody runs (medium, passes)."""
    listener_key = "{protocol}/{address}:{port}"
    return {
        "pack": {
            "id": "e2e-test",
            "version": "1.0.0",
            "title": {"vi": "Kiểm thử đầu cuối", "en": "End-to-end test"},
        },
        "rules": [
            {
                "id": RISKY_RULE,
                "title": {
                    "vi": f"Cổng rủi ro {port} mở ra mạng",
                    "en": f"Risky port {port} exposed",
                },
                "severity": "high",
                "rationale": {"vi": "Cổng dùng cho kiểm thử.", "en": "A port used by the test."},
                "remediation": {"vi": f"Đóng cổng {port}.", "en": f"Close port {port}."},
                "params": {"ports": [port]},
                "check": {
                    "for_none": {
                        "in": "listening",
                        "key": listener_key,
                        "assert": {
                            "all": [
                                {"path": "protocol", "op": "eq", "value": "tcp"},
                                {"path": "port", "op": "in", "value": {"param": "ports"}},
                                {"path": "exposure", "op": "ne", "value": "loopback"},
                            ]
                        },
                    }
                },
                "message": {
                    "vi": "Cổng {port} đang mở tại {address} (tiến trình {process})",
                    "en": "Port {port} is open on {address} (process {process})",
                },
            },
            {
                "id": "E2E-TCPMUX-EXPOSED",
                "title": {"vi": "Cổng tcpmux mở ra mạng", "en": "tcpmux exposed"},
                "severity": "medium",
                "rationale": {"vi": "Không ai dùng cổng 1.", "en": "Nobody uses port 1."},
                "remediation": {"vi": "Đóng cổng 1.", "en": "Close port 1."},
                "check": {
                    "for_none": {
                        "in": "listening",
                        "key": listener_key,
                        "assert": {
                            "all": [
                                {"path": "port", "op": "eq", "value": 1},
                                {"path": "exposure", "op": "ne", "value": "loopback"},
                            ]
                        },
                    }
                },
                "message": {"vi": "Cổng 1 mở tại {address}", "en": "Port 1 is open on {address}"},
            },
        ],
    }


@pytest.fixture
def e2e_pack(risky_listener: socket.socket, tmp_path: Path) -> Path:
    """The rule pack written for this test's listener port."""
    pack = tmp_path / "e2e-pack.yaml"
    port = int(risky_listener.getsockname()[1])
    pack.write_text(yaml.safe_dump(risky_port_pack(port), allow_unicode=True), "utf-8")
    return pack


@pytest.fixture
def collector(e2e_pack: Path, tmp_path: Path) -> Iterator[tuple[str, str]]:
    """A real `canhgac-server serve` on SQLite with the end-to-end pack: (url, db url)."""
    db_url = f"sqlite:///{tmp_path / 'canhgac.db'}"
    with running_collector("--db", db_url, "--rules", str(e2e_pack), log_dir=tmp_path) as served:
        yield served.url, db_url


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
