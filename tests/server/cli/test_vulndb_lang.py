"""`canhgac-server vulndb import / status / fetch` in Vietnamese: every message a user
reads, refusals included, has no English (each case is run in both languages and no
word of the English output, data aside, is in the Vietnamese one). The refusals are
real: the feed samples truncated, a bundle altered after its manifest was written, a
store file that is not one, a directory that cannot be created; fetch refusals
happen before any connection."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from server.cli.main import main
from server.vulns.bundle import MANIFEST, MANIFEST_SCHEMA
from tests.server.vulns.conftest import DATA

TRACKER = DATA / "debian-tracker.json"
VIETNAMESE = re.compile(r"[àáảãạăắằẳẵặâấầẩẫậđèéẻẽẹêếềểễệìíỉĩịòóỏõọôốồổỗộơớờởỡợùúủũụưứừửữựỳýỷỹỵ]")
# Commands, options and formats the user types or that name things: not prose.
COMMAND_WORDS = {"canhgac", "server", "vulndb", "import", "lang", "source", "https", "http",
                 "gzip", "json", "tracker", "debian", "epss"}  # fmt: skip


def _run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["vulndb", *args])
    return result.exit_code, result.output


def _bundle(tmp_path: Path) -> Path:
    """A bundle whose tracker was altered after the manifest was written."""
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    data = TRACKER.read_bytes()
    (bundle / "debian-tracker.json").write_bytes(data)
    manifest = {
        "schema": MANIFEST_SCHEMA,
        "fetched_at": "2026-11-29T06:00:00Z",
        "files": [
            {
                "name": "debian-tracker.json",
                "url": "https://security-tracker.debian.org/tracker/data/json",
                "sha256": hashlib.sha256(data).hexdigest(),
                "size_bytes": len(data),
            }
        ],
    }
    (bundle / MANIFEST).write_text(json.dumps(manifest))
    (bundle / "debian-tracker.json").write_bytes(data[:-10])
    return bundle


def _truncated(tmp_path: Path) -> list[str]:
    cut = tmp_path / "debian-tracker.json"
    cut.write_bytes(TRACKER.read_bytes()[: TRACKER.stat().st_size // 2])
    return ["import", "--store", str(tmp_path / "s.sqlite"), str(cut)]


def _not_a_store(tmp_path: Path) -> list[str]:
    store = tmp_path / "s.sqlite"
    store.write_text("not a database")
    return ["status", "--store", str(store)]


def _import_over_garbage(tmp_path: Path) -> list[str]:
    store = tmp_path / "s.sqlite"
    store.write_text("not a database")
    return ["import", "--store", str(store), str(TRACKER)]


def _bad_manifest(tmp_path: Path) -> list[str]:
    bundle = tmp_path / "b"
    bundle.mkdir()
    (bundle / MANIFEST).write_text('{"schema": "something else"}')
    return ["import", "--store", str(tmp_path / "s.sqlite"), str(bundle)]


def _fetch_into_a_file(tmp_path: Path) -> list[str]:
    (tmp_path / "file").write_text("")
    return ["fetch", str(tmp_path / "file" / "bundle"), "--source=x.json=http://127.0.0.1:9/x"]


CASES: dict[str, tuple[Callable[[Path], list[str]], int, str]] = {
    # name: (arguments, exit code, a Vietnamese phrase the message must hold)
    "missing path": (
        lambda p: ["import", "--store", str(p / "s.sqlite"), str(p / "nowhere.json")],
        1,
        "không có tệp hoặc thư mục",
    ),
    "truncated feed": (_truncated, 1, "không phải dữ liệu lỗ hổng hợp lệ"),
    "altered bundle": (
        lambda p: ["import", "--store", str(p / "s.sqlite"), str(_bundle(p))],
        1,
        "không khớp bảng kê",
    ),
    "bad manifest": (_bad_manifest, 1, "không đúng định dạng"),
    "no store": (
        lambda p: ["status", "--store", str(p / "s.sqlite")],
        1,
        "chưa có kho dữ liệu lỗ hổng",
    ),
    "not a store": (_not_a_store, 1, "không đọc được kho dữ liệu lỗ hổng"),
    "import over a non-store": (_import_over_garbage, 1, "không đọc được kho dữ liệu lỗ hổng"),
    "bad source": (lambda p: ["fetch", str(p / "b"), "--source=x"], 2, "TÊN=ĐỊA_CHỈ"),
    "plain http": (
        lambda p: ["fetch", str(p / "b"), "--source=x.json=http://192.0.2.1/x"],
        1,
        "chỉ tải qua https",
    ),
    "bad file name": (
        lambda p: ["fetch", str(p / "b"), "--source=../x.json=https://127.0.0.1:9/x"],
        1,
        "không phải tên tệp đơn giản",
    ),
    "cannot write": (_fetch_into_a_file, 1, "không ghi được vào"),
}


def _prose(text: str, tmp_path: Path) -> set[str]:
    """Words of 4+ letters, paths and URLs (data) taken out."""
    text = text.replace(str(tmp_path), " ").replace(str(DATA), " ")
    text = re.sub(r"\S*(://|/)\S*", " ", text)
    return {w.lower() for w in re.findall(r"[A-Za-z]{4,}", text)} - COMMAND_WORDS


@pytest.mark.parametrize("case", sorted(CASES))
def test_refusals_in_vietnamese_have_no_english(case: str, tmp_path: Path) -> None:
    arguments, code, phrase = CASES[case]
    english_dir, vietnamese_dir = tmp_path / "en", tmp_path / "vi"
    english_dir.mkdir()
    vietnamese_dir.mkdir()
    en_code, en = _run(*arguments(english_dir), "--lang", "en")
    vi_code, vi = _run(*arguments(vietnamese_dir), "--lang", "vi")
    assert en_code == vi_code == code, (en, vi)
    assert en.startswith("Error: ") and vi.startswith("Lỗi: "), (en, vi)
    assert phrase in vi and VIETNAMESE.search(vi), vi
    english = _prose(en, english_dir)
    assert english, en  # the English message is prose, so the comparison means something
    assert _prose(vi, vietnamese_dir) & english == set(), vi
    assert "Traceback" not in vi


def test_import_and_status_in_vietnamese(tmp_path: Path) -> None:
    store = tmp_path / "s.sqlite"
    code, out = _run("import", "--store", str(store), str(TRACKER), "--lang", "vi")
    assert code == 0 and out.startswith("Đã nhập debian-tracker (") and "thế hệ" in out
    code, en = _run("status", "--store", str(store), "--lang", "en")
    code_vi, vi = _run("status", "--store", str(store), "--lang", "vi")
    assert code == code_vi
    assert "nguồn dữ liệu" in vi and "tuổi (ngày)" in vi
    assert _prose(vi, tmp_path) & _prose(en, tmp_path) == set(), vi
