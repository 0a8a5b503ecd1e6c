"""`vulndb import / status / fetch` for real: the CLI on store files, refusals that
leave the previous store in place, and a bundle fetched from a loopback HTTP server
this test runs, verified against its manifest."""

from __future__ import annotations

import http.server
import json
import shutil
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pytest
from click.testing import CliRunner

from server.cli.main import main
from server.vulns.store import read_status
from tests.server.vulns.conftest import DATA

SAMPLES = [str(DATA / n) for n in ("debian-tracker.json", "kev.json", "epss.csv")]


def _run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.output


def _advisories(store: Path) -> int:
    with closing(sqlite3.connect(store)) as db:
        count: int = db.execute("SELECT count(*) FROM advisories").fetchone()[0]
    return count


def test_import_then_status_in_both_languages(tmp_path: Path) -> None:
    store = tmp_path / "vulndb.sqlite"
    code, out = _run("vulndb", "import", "--store", str(store), *SAMPLES)
    assert code == 0, out
    assert "debian-tracker (13)" in out and "kev (2)" in out and "epss (3)" in out
    # 13 bookworm/trixie/sid/bullseye advisories: undetermined, fixed_version 0 and TEMP-
    # entries are not stored
    assert _advisories(store) == 13
    code, vi = _run("vulndb", "status", "--store", str(store))
    assert code == 0, vi
    assert "nguồn dữ liệu" in vi and "còn mới" in vi and "feed" not in vi.split("\n")[0]
    code, en = _run("vulndb", "status", "--store", str(store), "--lang", "en")
    assert code == 0 and "current" in en and "cisa-kev-json" in en


def test_status_of_a_stale_or_missing_store_fails(tmp_path: Path) -> None:
    store = tmp_path / "vulndb.sqlite"
    code, out = _run("vulndb", "status", "--store", str(store))
    assert code == 1 and "vulndb import" in out
    _run("vulndb", "import", "--store", str(store), SAMPLES[1])  # KEV of 28/11/2026
    config = tmp_path / "c.yaml"
    config.write_text("server:\n  vulndb_max_age_days: 0.001\n")
    code, out = _run("vulndb", "status", "--store", str(store), "--config", str(config))
    assert code == 1 and "QUÁ CŨ" in out


@pytest.mark.parametrize(
    ("name", "damage"),
    [
        ("truncated", lambda text: text[: len(text) // 2]),
        ("unknown status", lambda text: text.replace('"status": "open"', '"status": "opne"', 1)),
        ("not a feed", lambda _text: '{"hello": "world"}'),
        ("kev count", lambda _text: None),
    ],
)
def test_a_bad_file_is_refused_and_the_previous_store_stays(
    tmp_path: Path, name: str, damage: object
) -> None:
    store = tmp_path / "vulndb.sqlite"
    assert _run("vulndb", "import", "--store", str(store), *SAMPLES)[0] == 0
    before = store.read_bytes()
    if name == "kev count":
        kev = json.loads((DATA / "kev.json").read_text())
        kev["vulnerabilities"].pop()  # a cut catalogue still parses as JSON
        bad_text = json.dumps(kev)
        bad = tmp_path / "kev.json"
    else:
        assert callable(damage)
        bad_text = damage((DATA / "debian-tracker.json").read_text())
        bad = tmp_path / "debian-tracker.json"
    bad.write_text(bad_text)
    code, out = _run("vulndb", "import", "--store", str(store), str(bad))
    assert code == 1, out
    assert str(bad) in out
    assert store.read_bytes() == before
    assert [f.name for f in read_status(store)] == ["debian-tracker", "epss", "kev"]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".vulndb")]


def test_importing_one_feed_keeps_the_others_and_the_fix_dates(tmp_path: Path) -> None:
    store = tmp_path / "vulndb.sqlite"
    _run("vulndb", "import", "--store", str(store), *SAMPLES)
    with closing(sqlite3.connect(store)) as db:
        first = dict(db.execute("SELECT cve, fix_seen_at FROM advisories WHERE package='openssl'"))
    _run("vulndb", "import", "--store", str(store), SAMPLES[1])
    assert [f.name for f in read_status(store)] == ["debian-tracker", "epss", "kev"]
    _run("vulndb", "import", "--store", str(store), SAMPLES[0])
    with closing(sqlite3.connect(store)) as db:
        again = dict(db.execute("SELECT cve, fix_seen_at FROM advisories WHERE package='openssl'"))
    assert again == first  # the fix was first seen at the first import, not now


@pytest.fixture
def loopback_feeds(tmp_path: Path) -> Iterator[str]:
    served = tmp_path / "served"
    served.mkdir()
    for sample in SAMPLES:
        shutil.copy(sample, served)

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args: object, **kwargs: object) -> None:
            super().__init__(*args, directory=str(served), **kwargs)  # type: ignore[arg-type]

        def log_message(self, format: str, *args: object) -> None:
            pass  # quiet test output

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_fetch_a_bundle_then_import_it_and_refuse_it_tampered(
    tmp_path: Path, loopback_feeds: str
) -> None:
    bundle = tmp_path / "bundle"
    sources = [
        f"--source={name}={loopback_feeds}/{name}"
        for name in ("debian-tracker.json", "kev.json", "epss.csv")
    ]
    code, out = _run("vulndb", "fetch", str(bundle), *sources)
    assert code == 0, out
    manifest = json.loads((bundle / "manifest.json").read_text())
    assert [f["name"] for f in manifest["files"]] == ["debian-tracker.json", "kev.json", "epss.csv"]
    store = tmp_path / "vulndb.sqlite"
    code, out = _run("vulndb", "import", "--store", str(store), str(bundle))
    assert code == 0, out
    before = store.read_bytes()
    tracker = bundle / "debian-tracker.json"
    tracker.write_text(tracker.read_text().replace("3.0.23-1~deb12u1", "3.0.23-1~deb12u9"))
    code, out = _run("vulndb", "import", "--store", str(store), str(bundle), "--lang", "en")
    assert code == 1 and "does not match the manifest" in out
    assert store.read_bytes() == before


def test_fetch_refuses_plain_http_off_loopback(tmp_path: Path) -> None:
    # Refused before any connection is attempted: nothing leaves this machine.
    code, out = _run(
        "vulndb", "fetch", str(tmp_path / "b"), "--source=x.json=http://192.0.2.1/x", "--lang", "en"
    )
    assert code == 1 and "only https" in out
