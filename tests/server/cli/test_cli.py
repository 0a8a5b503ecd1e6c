"""`canhgac-server`: every subcommand, its flags and its errors; `serve` for real."""

from __future__ import annotations

import re
import signal
from pathlib import Path

import pytest
import requests
from click.testing import CliRunner

from server.cli.main import main
from server.storage.migrate import head_revision
from tests.collector_process import running_collector
from tests.server.helpers import BAD_RULES_DIR, RULES_DIR, body_of, make_facts
from tests.support import free_port

TOKEN_RE = re.compile(r"^cgt_[a-z2-7]{10}_[A-Za-z0-9_-]{43}$", re.MULTILINE)


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def db_flag(db_url: str) -> str:
    return db_url  # SQLite and PostgreSQL


def test_db_upgrade(db_flag: str) -> None:
    code, out, _ = run("db", "upgrade", "--db", db_flag)
    assert code == 0
    # the newest migration's revision, read from the migrations themselves
    assert f"database is at revision {head_revision()}" in out


def test_token_create_prints_the_token_once_and_list_never(db_flag: str) -> None:
    code, out, err = run("token", "create", "--db", db_flag, "--agency", "so-a", "--name", "web01")
    assert code == 0
    [token] = TOKEN_RE.findall(out)
    assert "shown only once" in err
    code, listing, _ = run("token", "list", "--db", db_flag)
    assert code == 0
    token_id, secret = token.split("_")[1], token.split("_", 2)[2]
    assert token_id in listing and "so-a" in listing and "web01" in listing and "active" in listing
    assert secret not in listing


def test_token_revoke(db_flag: str) -> None:
    _, out, _ = run("token", "create", "--db", db_flag, "--agency", "so-a")
    token_id = out.strip().split("_")[1]
    assert run("token", "revoke", "--db", db_flag, token_id)[0] == 0
    assert "revoked" in run("token", "list", "--db", db_flag)[1]
    code, _, err = run("token", "revoke", "--db", db_flag, "nosuchtoken")
    assert code == 1 and "no such token" in err


def test_config_file_and_db_flag_precedence(tmp_path: Path) -> None:
    (tmp_path / "from-file").mkdir()
    (tmp_path / "from-flag").mkdir()
    config = tmp_path / "config.yaml"
    config.write_text("server:\n  data_dir: from-file\n", "utf-8")
    assert run("token", "create", "--config", str(config), "--agency", "so-a")[0] == 0
    assert (tmp_path / "from-file" / "canhgac.db").exists()
    flag_db = f"sqlite:///{tmp_path / 'from-flag' / 'x.db'}"
    assert run("token", "list", "--config", str(config), "--db", flag_db)[0] == 0
    assert (tmp_path / "from-flag" / "x.db").exists()


@pytest.mark.parametrize(
    "args",
    [
        ("db", "upgrade"),
        ("token", "create", "--agency", "so-a"),
        ("token", "list"),
        ("token", "revoke", "abc"),
        ("serve", "--rules", str(RULES_DIR)),
    ],
)
def test_every_subcommand_reports_a_missing_data_dir_clearly(
    tmp_path: Path, args: tuple[str, ...]
) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(f"server:\n  data_dir: {tmp_path / 'missing'}\n", "utf-8")
    code, _, err = run(*args, "--config", str(config))
    assert code == 1
    assert "data directory" in err and "does not exist" in err
    assert "Traceback" not in err


def test_bad_config_file_is_a_clear_error(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("server: {max_body_byte: 1}\n", "utf-8")
    code, _, err = run("token", "list", "--config", str(config))
    assert code == 2  # a usage error, like an unreadable file and like the agent's
    assert "unknown key(s) max_body_byte" in err


def test_invalid_agency_is_a_clear_error(db_flag: str) -> None:
    code, _, err = run("token", "create", "--db", db_flag, "--agency", "Bad Agency")
    assert code == 2 and "agency id" in err  # a usage error


def test_serve_refuses_plain_http_off_loopback(db_flag: str) -> None:
    # Refused before binding; a free port all the same, should the refusal break.
    listen = f"0.0.0.0:{free_port('0.0.0.0')}"
    code, _, err = run("serve", "--db", db_flag, "--listen", listen)
    assert code == 2
    assert "--allow-plain-http" in err


def test_serve_reports_every_rule_problem_and_exits_2(db_flag: str) -> None:
    code, _, err = run("serve", "--db", db_flag, "--rules", str(BAD_RULES_DIR))
    assert code == 2
    problems = [line for line in err.splitlines() if re.match(r".+\.yaml:\d+:\d+: ", line)]
    assert len(problems) == 2
    assert "catastrophic" in err and "frobnicate" in err


def test_rules_group_is_mounted() -> None:
    code, out, _ = run("rules", "validate", str(RULES_DIR))
    assert code == 0
    assert "3 rules" in out


def test_serve_runs_migrations_and_serves(tmp_path: Path, db_flag: str) -> None:
    """The real console entry point in a subprocess, on a loopback port; Ctrl-C is a
    clean exit."""
    _, out, _ = run("token", "create", "--db", db_flag, "--agency", "so-a")
    token = out.strip()
    with running_collector(
        "--db", db_flag, "--rules", str(RULES_DIR), "--log-level", "warning", log_dir=tmp_path
    ) as collector:
        response = requests.post(
            f"{collector.url}/api/v1/reports",
            data=body_of(make_facts()),
            headers={"Authorization": f"Bearer {token}"},
            timeout=30,
        )
        assert response.status_code == 200
        assert response.json()["score"] == 1.0
        metrics = requests.get(f"{collector.url}/metrics", timeout=10).text
        assert 'canhgac_host_score_ratio{agency="so-a",host="web01"} 1.0' in metrics
        assert collector.stop(signal.SIGINT) == 0, collector.log()
