"""The bench runner (bench/figures.py) on a tiny fake bench directory, as real processes.

Each fake bench is a real script run by the real runner in a fresh interpreter; it
records figures through `record`, as the real benches do. The runner's table (stdout),
its JSON file and its exit status are checked.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RUNNER = ROOT / "bench" / "figures.py"

FAST = """
from figures import record
record("decode", 2.5, "ms", baseline=10.0, baseline_name="old decoder", goal="< 5 ms")
record("peak RSS", 40.0, "MiB")
"""
BROKEN = """
from figures import record
record("before the crash", 1.0, "s", baseline=4.0)
raise SystemExit(3)
"""
QUIET = "print('nothing to record')\n"
SKIPPED = """
from figures import skip
skip("needs root")
"""


def _bench_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "benches"
    directory.mkdir()
    (directory / "a_fast.py").write_text(FAST)
    (directory / "b_broken.py").write_text(BROKEN)
    (directory / "c_quiet.py").write_text(QUIET)
    (directory / "d_skipped.py").write_text(SKIPPED)
    (directory / "_helper.py").write_text("raise SystemExit('a helper is not a bench')\n")
    return directory


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(RUNNER), *args], capture_output=True, text=True, check=False
    )


def test_runner_table_json_and_failure(tmp_path: Path) -> None:
    out = tmp_path / "var" / "bench.json"
    done = _run(str(_bench_dir(tmp_path)), "--json", str(out))
    assert done.returncode == 1, done.stdout + done.stderr
    assert "failed: b_broken" in done.stderr
    # Every bench ran (the broken one did not stop the others), the helper did not.
    assert [ln for ln in done.stdout.splitlines() if ln.startswith("== ")] == [
        "== a_fast.py",
        "== b_broken.py",
        "== c_quiet.py",
        "== d_skipped.py",
    ]
    table = done.stdout.split("\n\n")[-1].splitlines()
    assert table[0].split() == ["bench", "figure", "value", "unit", "baseline", "ratio", "goal"]
    rows = [" ".join(line.split()) for line in table[2:] if not line.startswith("figures ")]
    assert rows == [
        "a_fast decode 2.5 ms 10 (old decoder) 0.25 < 5 ms",
        "a_fast peak RSS 40 MiB - -",
        "b_broken before the crash 1 s 4 0.25",
        "b_broken FAILED (exit 3) - - -",
        "c_quiet (no figures recorded) - - -",
        "d_skipped SKIPPED (needs root) - - -",
    ]
    data = json.loads(out.read_text())
    assert [(b["bench"], b["returncode"], b["failed"]) for b in data["benches"]] == [
        ("a_fast", 0, False),
        ("b_broken", 3, True),
        ("c_quiet", 0, False),
        ("d_skipped", 77, False),
    ]
    assert data["figures"][0] == {
        "bench": "a_fast",
        "figure": "decode",
        "value": 2.5,
        "unit": "ms",
        "baseline": 10.0,
        "baseline_name": "old decoder",
        "ratio": 0.25,
        "goal": "< 5 ms",
    }
    assert data["figures"][1]["ratio"] is None
    assert data["figures"][1]["baseline"] is None
    assert [f["figure"] for f in data["figures"]] == ["decode", "peak RSS", "before the crash"]


def test_runner_all_passing_exits_zero_and_only_filters(tmp_path: Path) -> None:
    directory = _bench_dir(tmp_path)
    done = _run(str(directory), "--only", "a_fast", "c_quiet", "d_skipped")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "b_broken" not in done.stdout
    unknown = _run(str(directory), "--only", "nope")
    assert unknown.returncode == 2
    assert "no such bench: nope" in unknown.stderr


def test_record_prints_without_json_env(tmp_path: Path) -> None:
    script = tmp_path / "one.py"
    script.write_text(FAST)
    env = {"PYTHONPATH": str(RUNNER.parent), "PATH": "/usr/bin:/bin"}
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, check=True, env=env
    )
    assert done.stdout.splitlines()[0] == (
        "FIGURE decode: 2.5 ms   baseline (old decoder) 10 ms   ratio 0.25   goal: < 5 ms"
    )
    assert done.stdout.splitlines()[1] == "FIGURE peak RSS: 40 MiB"
