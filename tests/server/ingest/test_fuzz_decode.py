"""Runs the atheris fuzz target of report decoding briefly (a few thousand inputs,
from a corpus seeded with a real report); long runs are done by hand (see the
target's docstring). A crash is a failure with libFuzzer's report."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

from tests.server.helpers import make_facts
from tests.support import require

TARGET = Path(__file__).with_name("fuzz_decode.py")


def test_fuzz_decode_briefly(tmp_path: Path) -> None:
    require(importlib.util.find_spec("atheris") is not None, "atheris is not installed")
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    report = make_facts(collected_at=datetime(2026, 11, 27, 7, 0, tzinfo=UTC))
    document = json.dumps(report).encode()
    for mode in (b"\x00", b"\x02"):  # identity, and gzip done by the target
        (corpus / f"report-{mode[0]}").write_bytes(mode + document)
    done = subprocess.run(
        [sys.executable, str(TARGET), str(corpus), "-runs=4000", "-seed=1", "-max_len=8192"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    assert "Done 4000 runs" in done.stderr
