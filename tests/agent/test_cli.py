"""The `canhgac-agent` command line, through click's runner and as the installed script."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from agent.cli.main import main
from agent.collectors.base import CollectContext
from agent.collectors.system import ProcessOwner
from agent.document import collect_facts
from agent.state.identity import Identity
from rules.language.loader import builtin_packs_dir, load_rules
from rules.language.model import Severity
from rules.policy.scoring import DEFAULT_WEIGHTS
from tests.agent.collector_stub import make_pki, serve
from tests.agent.conftest import DATA, ROOTS
from tests.agent.fakes import FakeSystem, RecordedRunner, tcp
from tests.support import free_port, require

PACK = DATA / "rules" / "test-pack.yaml"
SCRIPT = Path(sys.executable).with_name("canhgac-agent")


def invoke(*args: str, env: dict[str, str] | None = None, stdin: str | None = None) -> Result:
    return CliRunner().invoke(main, list(args), env=env, input=stdin, catch_exceptions=False)


def _facts(tmp_path: Path, *listeners: Any, hostname_extra: str = "") -> Path:
    owners = {1: ProcessOwner("in.telnetd", "root"), 2: ProcessOwner("nginx", "www-data")}
    system = FakeSystem(sockets=list(listeners), owners=owners)
    ctx = CollectContext(
        root=ROOTS / "debian12", run=RecordedRunner(), system=system, fqdn_resolver=lambda _n: None
    )
    document = collect_facts(ctx, Identity("test-agent", 1))
    document["host"]["hostname"] += hostname_extra
    path = tmp_path / "facts.json"
    path.write_text(json.dumps(document))
    return path


# collect ---------------------------------------------------------------------------


def test_collect_prints_a_valid_document_and_seq_increases(
    tmp_path: Path, validate: Callable[[Any], Any]
) -> None:
    state = tmp_path / "state"
    first = invoke("collect", "--state-dir", str(state))
    assert first.exit_code == 0, first.output
    document = json.loads(first.stdout)
    validate(document)
    out = tmp_path / "facts.json"
    second = invoke("collect", "--state-dir", str(state), "--output", str(out))
    assert second.exit_code == 0 and second.stdout == ""
    again = json.loads(out.read_text())
    validate(again)
    assert (document["seq"], again["seq"]) == (1, 2)
    assert document["agent_id"] == again["agent_id"]
    assert document["report_id"] != again["report_id"]
    assert json.loads((state / "state.json").read_text())["seq"] == 2


def test_collect_emits_a_stable_seq_epoch_and_remembers_pending_updates(tmp_path: Path) -> None:
    state = tmp_path / "state"
    first = json.loads(invoke("collect", "--state-dir", str(state)).stdout)
    second = json.loads(invoke("collect", "--state-dir", str(state)).stdout)
    assert first["seq_epoch"] == second["seq_epoch"]
    stored = json.loads((state / "state.json").read_text())
    assert stored["seq_epoch"] == first["seq_epoch"]
    if "updates" in second:
        assert len(stored.get("pending_seen", {})) == len(second["updates"]["pending"])
        # Watching started with the first collection, and the second one says so.
        assert second["updates"]["pending_watched_since"] == first["collected_at"]
        assert stored["pending_watched_since"] == first["collected_at"]
    # A new state (reinstall, wiped directory) is a new epoch: seq restarted, not late.
    fresh = json.loads(invoke("collect", "--state-dir", str(tmp_path / "new")).stdout)
    assert fresh["seq"] == 1 and fresh["seq_epoch"] != first["seq_epoch"]


def test_an_old_state_file_gets_an_epoch_on_first_use(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    (state / "state.json").write_text('{"seq": 41}')
    document = json.loads(invoke("collect", "--state-dir", str(state)).stdout)
    assert document["seq"] == 42 and document["seq_epoch"]
    assert json.loads((state / "state.json").read_text())["seq_epoch"] == document["seq_epoch"]


def test_collect_no_state_writes_nothing(tmp_path: Path, validate: Callable[[Any], Any]) -> None:
    result = invoke("collect", "--no-state", env={"HOME": str(tmp_path), "XDG_STATE_HOME": ""})
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    validate(document)
    assert document["seq"] == 0 and "seq_epoch" not in document
    assert list(tmp_path.iterdir()) == []
    both = invoke("collect", "--no-state", "--state-dir", str(tmp_path))
    assert both.exit_code == 2 and "cannot be used together" in both.stderr


def test_collect_help_says_what_it_writes() -> None:
    text = " ".join(invoke("collect", "--help").stdout.split())
    assert "/var/lib/canhgac-agent" in text and "--no-state" in text


def test_check_help_documents_exit_codes() -> None:
    text = invoke("check", "--help").stdout
    for line in ("0  no rule", "1  a rule", "2  bad usage", "3  no failure"):
        assert line in text


def test_collect_reads_the_config_and_flags_win(tmp_path: Path) -> None:
    config = tmp_path / "agent.yaml"
    config.write_text("agent:\n  state_dir: from-config\n  agent_id: so-ttt-web01\n")
    result = invoke("collect", "--config", str(config))
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["agent_id"] == "so-ttt-web01"
    assert (tmp_path / "from-config" / "state.json").exists()
    invoke("collect", "--config", str(config), "--state-dir", str(tmp_path / "flag"))
    assert json.loads((tmp_path / "flag" / "state.json").read_text())["seq"] == 1


def test_collect_with_a_bad_config_is_a_usage_error(tmp_path: Path) -> None:
    config = tmp_path / "agent.yaml"
    config.write_text("agent: {agent_id: 'bad id'}\n")
    result = invoke("collect", "--config", str(config), "--state-dir", str(tmp_path))
    assert result.exit_code == 2
    assert "invalid agent_id" in result.stderr


def test_collect_with_an_unusable_state_dir_fails_clearly(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    result = invoke("collect", "--state-dir", str(blocker / "sub"))
    assert result.exit_code == 1
    assert "cannot use state directory" in result.stderr


# check -----------------------------------------------------------------------------


def test_check_report_sorted_with_exit_code_from_fail_on(tmp_path: Path) -> None:
    facts = _facts(tmp_path, tcp("0.0.0.0", 23, 1), tcp("0.0.0.0", 80, 2))
    result = invoke("check", "--rules", str(PACK), "--facts", str(facts), "--lang", "en")
    assert result.exit_code == 1  # a critical rule fails; default --fail-on high
    lines = result.stdout.splitlines()
    heads = [line.split("] ")[1].split(":")[0] for line in lines if line.startswith("[")]
    # Failing first, then the rule in error; the passing rule is counted, not listed.
    assert heads == ["TEST-TELNET", "TEST-HTTP", "TEST-SSH"]
    assert "    - Telnet on 0.0.0.0:23 (process in.telnetd)" in lines
    assert "    Fix: Disable telnet" in lines
    command = f"canhgac-agent check --rules {PACK} --facts {facts} --lang en --all"
    # (wrapped to the terminal's width: compare the words)
    words = " ".join(result.stdout.split())
    assert f"pass: 1; not applicable: 0; waived: 0 (listed by: {command})." in words
    # pass: the low rule; fail: critical and medium; error: high (never a pass).
    w = DEFAULT_WEIGHTS
    ratio = w[Severity.LOW] / (
        w[Severity.LOW] + w[Severity.CRITICAL] + w[Severity.MEDIUM] + w[Severity.HIGH]
    )
    assert lines[-2] == (
        f"Local compliance score: {ratio * 100:.1f}%"
        " (pass 1, fail 2, could not be checked 1, not applicable 0, waived 0)"
    )
    assert "the collector's score is authoritative" in lines[-1]


@pytest.mark.parametrize(
    ("fail_on", "listeners", "code"),
    [
        ("high", [tcp("0.0.0.0", 80, 2)], 3),  # a medium rule fails; the high one is in error
        ("medium", [tcp("0.0.0.0", 80, 2)], 1),  # a failure wins over an error
        ("critical", [tcp("0.0.0.0", 23, 1)], 1),
        ("critical", [], 0),  # the high rule in error is below the threshold
        ("info", [], 3),  # nothing fails, but a rule could not be evaluated
    ],
)
def test_check_fail_on(tmp_path: Path, fail_on: str, listeners: list[Any], code: int) -> None:
    facts = _facts(tmp_path, *listeners)
    result = invoke("check", "--rules", str(PACK), "--facts", str(facts), "--fail-on", fail_on)
    assert result.exit_code == code, result.output


def test_check_vietnamese_is_the_default(tmp_path: Path) -> None:
    result = invoke(
        "check", "--rules", str(PACK), "--facts", str(_facts(tmp_path, tcp("::", 23, 1)))
    )
    assert "Quy tắc không đạt: 1" in result.stdout
    assert "Telnet tại :::23" in result.stdout
    assert "Điểm tuân thủ cục bộ:" in result.stdout
    assert "nghiêm trọng" in result.stdout and "không đạt" in result.stdout


def test_check_json(tmp_path: Path) -> None:
    facts = _facts(tmp_path, tcp("0.0.0.0", 23, 1))
    result = invoke("check", "--rules", str(PACK), "--facts", str(facts), "--format", "json")
    assert result.exit_code == 1
    payload = json.loads(result.stdout)
    by_id = {r["rule_id"]: r for r in payload["results"]}
    assert set(by_id) == {"TEST-TELNET", "TEST-HTTP", "TEST-HOSTNAME", "TEST-SSH"}
    assert by_id["TEST-TELNET"]["status"] == "fail"
    assert by_id["TEST-TELNET"]["items"][0]["key"] == "tcp/0.0.0.0:23"
    assert by_id["TEST-SSH"]["status"] == "error"
    assert payload["score"]["failed"] == 1
    assert payload["score"]["failing_by_severity"]["critical"] == 1
    w = DEFAULT_WEIGHTS
    earned = w[Severity.LOW] + w[Severity.MEDIUM]
    assert payload["score"]["ratio"] == pytest.approx(
        earned / (earned + w[Severity.CRITICAL] + w[Severity.HIGH])
    )


def test_check_escapes_control_characters_from_facts(tmp_path: Path) -> None:
    facts = json.loads(_facts(tmp_path, tcp("0.0.0.0", 23, 1)).read_text())
    facts["listening"][0]["process"] = "telnetd\x1b[2J\x1b]0;pwned\x07\u202egnp.exe\n"
    facts["host"]["hostname"] = "evil\x1b[31m"
    path = tmp_path / "hostile.json"
    path.write_text(json.dumps(facts))
    result = invoke("check", "--rules", str(PACK), "--facts", str(path), "--lang", "en")
    for raw in ("\x1b", "\x07", "\u202e"):
        assert raw not in result.stdout
        assert raw not in result.stderr
    assert "telnetd\\x1b[2J\\x1b]0;pwned\\x07\\u202egnp.exe\\x0a" in result.stdout


def test_check_notes_collector_errors_on_stderr(tmp_path: Path) -> None:
    facts = json.loads(_facts(tmp_path).read_text())
    facts["errors"] = [{"domain": "listening", "kind": "permission", "reason": "2 of 5\x1b[0m"}]
    path = tmp_path / "f.json"
    path.write_text(json.dumps(facts))
    result = invoke("check", "--rules", str(PACK), "--facts", str(path), "--lang", "en")
    assert "note: listening: permission: 2 of 5\\x1b[0m" in result.stderr


def test_check_reads_facts_from_stdin(tmp_path: Path) -> None:
    text = _facts(tmp_path, tcp("0.0.0.0", 23, 1)).read_text()
    result = invoke("check", "--rules", str(PACK), "--facts", "-", stdin=text)
    assert result.exit_code == 1
    assert "TEST-TELNET" in result.stdout


def test_check_rule_problems_exit_2_with_locations(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(PACK.read_text().replace("severity: critical", "severity: catastrophic"))
    result = invoke("check", "--rules", str(bad), "--facts", str(_facts(tmp_path)))
    assert result.exit_code == 2
    problem_lines = [line for line in result.stderr.splitlines() if line.startswith(str(bad))]
    assert problem_lines
    assert all(len(line.split(":")) >= 4 for line in problem_lines)  # file:line:col: message
    assert "severity" in result.stderr


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "not valid JSON"),
        ('{"schema": "other/v9"}', "is not a canhgac.facts/v1"),
        ("[]", "is not a canhgac.facts/v1"),
        ('{"schema": "canhgac.facts/v1"}', "'errors' must be a list"),
        ('{"schema": "canhgac.facts/v1", "errors": {}}', "'errors' must be a list"),
    ],
)
def test_check_bad_facts_file_exit_2(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "facts.json"
    path.write_text(content)
    result = invoke("check", "--rules", str(PACK), "--facts", str(path))
    assert result.exit_code == 2
    assert message in result.stderr


def test_check_collects_live_with_builtin_packs_without_touching_state(tmp_path: Path) -> None:
    system_state = Path("/var/lib/canhgac-agent")
    existed = system_state.exists()
    result = invoke("check", "--lang", "en", "--format", "json", "--fail-on", "info")
    assert result.exit_code in (0, 1, 3), result.output
    payload = json.loads(result.stdout)
    builtin = load_rules([builtin_packs_dir()])
    assert [r["rule_id"] for r in payload["results"]] == [r.id for r in builtin.rules]
    assert system_state.exists() == existed


def test_check_uses_rules_from_the_config(tmp_path: Path) -> None:
    config = tmp_path / "agent.yaml"
    config.write_text(f"agent:\n  rules: [{PACK}]\n")
    result = invoke(
        "check", "--config", str(config), "--facts", str(_facts(tmp_path)), "--format", "json"
    )
    ids = {r["rule_id"] for r in json.loads(result.stdout)["results"]}
    assert ids == {"TEST-TELNET", "TEST-HTTP", "TEST-HOSTNAME", "TEST-SSH"}


# run -------------------------------------------------------------------------------


@pytest.mark.parametrize("interval", ["soon", "0s", "-5m"])
def test_run_refuses_a_bad_interval(tmp_path: Path, interval: str) -> None:
    result = invoke(
        "run", "--interval", interval, "--server", "https://127.0.0.1:1", "--token", "t"
    )
    assert result.exit_code == 2
    assert "--interval" in result.stderr


def test_run_once_ships_one_report(tmp_path: Path, validate: Callable[[Any], Any]) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("agent-token-123\n")
    with serve() as stub:
        result = invoke(
            "run",
            "--once",
            "--server",
            stub.url,
            "--token-file",
            str(token_file),
            "--state-dir",
            str(tmp_path / "state"),
            "--lang",
            "en",
        )
        assert result.exit_code == 0, result.output
        (request,) = stub.requests
    document = request.document()
    validate(document)
    assert request.path == "/api/v1/reports"
    assert request.headers["Authorization"] == "Bearer agent-token-123"
    assert request.headers["Content-Encoding"] == "gzip"
    assert document["seq"] == 1
    assert result.stdout == (
        f"report {document['report_id']}: accepted; score 87.5%; 2 failing rules\n"
    )


def test_run_once_over_tls_with_token_from_env_and_config(tmp_path: Path) -> None:
    pki = make_pki(tmp_path)
    with serve(pki.server_context) as stub:
        config = tmp_path / "agent.yaml"
        config.write_text(
            f"agent:\n  server: {stub.url}\n  ca_file: {pki.ca_file}\n  state_dir: st\n"
        )
        result = invoke("run", "--once", "--config", str(config), env={"CANHGAC_TOKEN": "from-env"})
        assert result.exit_code == 0, result.output
        stub.answer = {
            "status": "duplicate",
            "report_id": "r-1",
            "duplicate": True,
            "score": None,
            "failing": 0,
        }
        again = invoke("run", "--once", "--config", str(config), "--token", "from-flag")
    assert "đã được tiếp nhận" in result.stdout
    assert "đã nhận báo cáo này trước đó (trùng lặp)" in again.stdout
    assert "điểm" not in again.stdout  # a duplicate is not scored again
    assert [r.headers["Authorization"] for r in stub.requests] == [
        "Bearer from-env",
        "Bearer from-flag",
    ]
    assert [r.document()["seq"] for r in stub.requests] == [1, 2]


def test_run_once_rejected_token_is_a_clear_error(tmp_path: Path) -> None:
    with serve() as stub:
        stub.status = 401
        stub.answer = {
            "error": {"code": "invalid_token", "message": "the bearer token is not valid"}
        }
        result = invoke(
            "run",
            "--once",
            "--server",
            stub.url,
            "--token",
            "nope",
            "--state-dir",
            str(tmp_path),
            "--lang",
            "en",
        )
    assert result.exit_code == 1
    assert "delivery failed: the server rejected the report" in result.stderr
    assert "HTTP 401 invalid_token: the bearer token is not valid" in result.stderr
    assert "Traceback" not in result.output


def test_run_once_unreachable_server(tmp_path: Path) -> None:
    result = invoke(
        "run",
        "--once",
        "--server",
        f"http://127.0.0.1:{free_port()}",
        "--token",
        "t",
        "--state-dir",
        str(tmp_path),
    )
    assert result.exit_code == 1
    # The framing in the chosen language; the library's own reason after it, as is.
    assert "gửi báo cáo thất bại: không kết nối được tới http://127.0.0.1:" in result.stderr
    assert "cannot reach" not in result.stderr and "delivery failed" not in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--server", "http://127.0.0.1:9"], "no token"),
        (["--token", "t"], "no collector URL"),
        (["--server", "http://example.gov.vn", "--token", "t"], "plain HTTP"),
    ],
)
def test_run_once_usage_errors(tmp_path: Path, args: list[str], message: str) -> None:
    result = invoke("run", "--once", "--state-dir", str(tmp_path), *args, env={"CANHGAC_TOKEN": ""})
    assert result.exit_code == 2
    assert message in result.stderr


def test_run_once_token_and_token_file_are_exclusive(tmp_path: Path) -> None:
    token_file = tmp_path / "t"
    token_file.write_text("x")
    result = invoke(
        "run",
        "--once",
        "--server",
        "http://127.0.0.1:9",
        "--token",
        "a",
        "--token-file",
        str(token_file),
        "--state-dir",
        str(tmp_path),
    )
    assert result.exit_code == 2
    assert "cannot be used together" in result.stderr


# rules group and the installed script ---------------------------------------------


def test_rules_group_is_mounted() -> None:
    result = invoke("rules", "validate", str(PACK))
    assert result.exit_code == 0, result.output
    assert "4 rules" in result.stdout


def test_installed_script() -> None:
    require(SCRIPT.exists(), "canhgac-agent is not installed next to this interpreter")
    version = subprocess.run([SCRIPT, "--version"], capture_output=True, text=True, check=True)
    assert version.stdout.startswith("canhgac-agent, version ")
    listed = subprocess.run(
        [SCRIPT, "rules", "list", str(PACK), "--lang", "en"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "TEST-TELNET" in listed.stdout
