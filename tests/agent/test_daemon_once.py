"""`run --once` through the spool, as cron or the timer runs it: a run during an outage
keeps its report and says so in the chosen language; the next run delivers the kept
report first, then its own, in seq order, against a real HTTP server on loopback."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from agent.cli.main import main
from tests.agent.collector_stub import serve
from tests.support import free_port


def test_a_run_during_an_outage_keeps_its_report_for_the_next_run(tmp_path: Path) -> None:
    config = tmp_path / "agent.yaml"
    config.write_text("agent:\n  probe_listeners: false\n")
    common = ["--config", str(config), "--token", "t", "--state-dir", str(tmp_path / "st")]
    down = CliRunner().invoke(
        main, ["run", "--once", "--server", f"http://127.0.0.1:{free_port()}", *common]
    )
    assert down.exit_code == 1
    assert "báo cáo được giữ lại trong hàng đợi (1 báo cáo đang chờ)" in down.stderr
    assert "gửi báo cáo thất bại: không kết nối được tới" in down.stderr
    assert len(list((tmp_path / "st" / "spool").glob("*.json.gz"))) == 1
    with serve() as stub:
        up = CliRunner().invoke(
            main, ["run", "--once", "--server", stub.url, "--lang", "en", *common]
        )
    assert up.exit_code == 0, up.output
    sent = [r.document() for r in stub.requests]
    assert [d["seq"] for d in sent] == [1, 2]
    assert up.stdout.splitlines() == [
        f"report {d['report_id']}: accepted; score 87.5%; 2 failing rules" for d in sent
    ]
    assert list((tmp_path / "st" / "spool").glob("*.json.gz")) == []


def test_a_refused_report_is_quarantined_and_the_run_fails(tmp_path: Path) -> None:
    config = tmp_path / "agent.yaml"
    config.write_text("agent:\n  probe_listeners: false\n")
    with serve() as stub:
        stub.status = 422
        stub.answer = {"error": {"code": "invalid_facts", "message": "bad", "field": "seq"}}
        result = CliRunner().invoke(
            main,
            [
                "run",
                "--once",
                "--server",
                stub.url,
                "--token",
                "t",
                "--lang",
                "en",
                "--config",
                str(config),
                "--state-dir",
                str(tmp_path / "st"),
            ],
        )
    assert result.exit_code == 1
    assert "set aside in the quarantine folder: HTTP 422 invalid_facts: bad" in result.stderr
    assert len(list((tmp_path / "st" / "spool" / "quarantine").glob("*.json.gz"))) == 1
