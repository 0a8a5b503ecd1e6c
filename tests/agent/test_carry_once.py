"""Two `canhgac-agent run --once` processes in a row, as a systemd timer runs them,
hand the updates cache and the watchdog's skips over through the state directory.

Real agent processes (the real collectors, the real `apt list --upgradable` of this
Debian machine) deliver to a real HTTP server on loopback (tests.agent.collector_stub)
that records the documents. Between the runs the test edits carried.json as an
observer would: the cached apt output gets a marker line no real apt prints, so the
second report showing it proves the second process took apt's answer from the file
rather than running apt; and a skip is added as the first run's watchdog would have
left it (making a real collector go over its CPU budget is not something a test can do
reliably on shared cores).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from agent.state.carry import CARRY_FILE
from tests.agent.collector_stub import Stub, serve
from tests.support import require_tool

AGENT = str(Path(sys.executable).parent / "canhgac-agent")
MARKER = "canhgac-carried-proof/stable 9.9-1 amd64 [upgradable from: 1.0-1]"
REASON = "used 9.0 CPU-s, over its budget of 5"


def _run_once(stub: Stub, tmp_path: Path, lang: str = "en") -> subprocess.CompletedProcess[str]:
    config = tmp_path / "agent.yaml"
    config.write_text("agent:\n  probe_listeners: false\n")
    argv = [AGENT, "run", "--once", "--server", stub.url, "--token", "t", "--lang", lang]
    argv += ["--config", str(config), "--state-dir", str(tmp_path / "state")]
    return subprocess.run(argv, capture_output=True, text=True, timeout=300, check=False)


def _errors_of(document: dict[str, Any], domain: str) -> list[dict[str, str]]:
    return [e for e in document["errors"] if e["domain"] == domain]


def test_the_second_run_uses_the_first_runs_cache_and_skips(tmp_path: Path) -> None:
    require_tool("apt")
    carried_path = tmp_path / "state" / CARRY_FILE
    with serve() as stub:
        first = _run_once(stub, tmp_path)
        assert first.returncode == 0, first.stderr
        carried = json.loads(carried_path.read_text())
        (apt,) = [o for o in carried["outputs"] if "--upgradable" in o["key"]]
        assert carried["skips"] == []
        apt["stdout"] = f"Listing...\n{MARKER}\n"
        carried["skips"].append({"domain": "certificates", "left": 600, "reason": REASON})
        carried_path.write_text(json.dumps(carried))

        second = _run_once(stub, tmp_path)
        assert second.returncode == 0, second.stderr
        sent = [r.document() for r in stub.requests]
    assert [d["seq"] for d in sent] == [1, 2]
    first_doc, second_doc = sent
    proof = [p for p in second_doc["updates"]["pending"] if p["name"] == "canhgac-carried-proof"]
    assert len(proof) == 1, second_doc["updates"]["pending"]
    assert not [p for p in first_doc["updates"]["pending"] if p["name"] == "canhgac-carried-proof"]
    (skipped,) = _errors_of(second_doc, "certificates")
    assert skipped["kind"] == "skipped" and REASON in skipped["reason"]
    assert "certificates" in first_doc and "certificates" not in second_doc
    # The skip goes on, with less time left; the cache entry is kept for the next run.
    after = json.loads(carried_path.read_text())
    (skip,) = after["skips"]
    assert skip["domain"] == "certificates" and 0 < skip["left"] < 600
    assert [o["stdout"] for o in after["outputs"] if "--upgradable" in o["key"]] == [
        f"Listing...\n{MARKER}\n"
    ]


def test_a_corrupt_carried_file_is_reported_and_the_run_goes_on(tmp_path: Path) -> None:
    carried_path = tmp_path / "state" / CARRY_FILE
    carried_path.parent.mkdir()
    carried_path.write_text('{"version": 1, "outputs": [')
    with serve() as stub:
        vi = _run_once(stub, tmp_path, lang="vi")
        assert vi.returncode == 0, vi.stderr
        assert "bỏ qua bộ nhớ đệm giữ giữa các lần chạy" in vi.stderr
        assert "is not valid JSON" in vi.stderr
        assert len(stub.requests) == 1
    # Replaced by a valid file: the next run has nothing to report.
    assert json.loads(carried_path.read_text())["version"] == 1
    with serve() as stub:
        en = _run_once(stub, tmp_path)
    assert en.returncode == 0 and "kept between runs" not in en.stderr, en.stderr
