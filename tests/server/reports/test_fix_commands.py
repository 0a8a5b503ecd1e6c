"""Fix commands in the audit: each finding carries its rule's command for its host's
OS family (`host.os.family` of the host's report at the cut-off), in every format and
both languages; a host of unknown family gets none, and a hostile command stays inert.

The Debian host's `host` domain is a real recorded one (tests/data/server/vulns/
facts.debian12.json); the Rocky host's `os` is what the agent's own parser derives
from a real Rocky Linux 9.4 os-release (tests/data/agent/roots/rocky9). The rules are
tests/data/server/rules (none has a command) plus a pack written here with commands for both families.
"""

from __future__ import annotations

import csv
import io
import json
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from openpyxl import load_workbook

from agent.collectors.osrelease import family_of, id_like, parse_os_release
from server.config import ServerConfig
from server.evaluation.loaded_policy import load_server_policy
from server.read.audit import audit_outline, build_audit
from server.read.audit_detail import StoredDetail
from server.read.audit_views import AuditReport
from server.reports.render import Format, render_audit, stream_audit
from server.reports.text import Lang, t
from server.storage.database import Database
from tests.server.helpers import RULES_DIR, telnet
from tests.server.reports.fleet import BETWEEN, FRAMEWORK, T1, WAIVERS, Fleet, audit_policy
from tests.server.reports.test_html_pdf import TIMEOUT, chromium, open_in_chromium, parse
from tests.support import require_tool

DATA = Path(__file__).resolve().parents[2] / "data"
DEBIAN_FACTS = DATA / "server" / "vulns" / "facts.debian12.json"
ROCKY_OS_RELEASE = DATA / "agent" / "roots" / "rocky9" / "etc" / "os-release"

DEBIAN_FIX = "apt-get purge -y telnetd"
RHEL_FIX = "dnf -y remove telnet-server"
# A formula, a pipe to a command, markup and a right-to-left override. The loader
# refuses a `<word>` placeholder in a fix, so `<script>` itself cannot be in one;
# `</script>` and an unclosed `<img ... onerror=` can, and the latter would become
# an element (closed by the page's next `>`) if it were not escaped.
HOSTILE_FIX = "=cmd|' /C calc'!A0 </script> \u202eevil <img src=x onerror=alert(1) x="

PACK = f"""
pack:
  id: fix-test
  version: 1.0.0
  title: {{vi: Gói thử lệnh khắc phục, en: Fix command test pack}}
rules:
  - id: TEST-FIX-TELNET
    title: {{vi: Telnet mở ra mạng, en: Telnet exposed}}
    severity: high
    rationale: {{vi: Bản rõ., en: Clear text.}}
    remediation: {{vi: Gỡ Telnet., en: Remove Telnet.}}
    fix:
      debian: "{DEBIAN_FIX}"
      rhel: "{RHEL_FIX}"
    check:
      for_none:
        in: listening
        key: "{{protocol}}/{{address}}:{{port}}"
        assert:
          all:
            - {{path: port, op: eq, value: 23}}
            - {{path: exposure, op: ne, value: loopback}}
    message: {{vi: "Telnet tại {{port}}", en: "Telnet on {{port}}"}}
  - id: TEST-FIX-HOSTILE
    title: {{vi: Lệnh độc hại, en: Hostile command}}
    severity: low
    rationale: {{vi: Thử., en: Test.}}
    remediation: {{vi: Không chạy., en: Do not run.}}
    fix:
      debian: {json.dumps(HOSTILE_FIX)}
    check:
      for_none:
        in: listening
        key: "{{protocol}}/{{address}}:{{port}}"
        assert:
          all:
            - {{path: port, op: eq, value: 23}}
            - {{path: exposure, op: ne, value: loopback}}
    message: {{vi: "Telnet tại {{port}}", en: "Telnet on {{port}}"}}
"""


def _debian_host() -> dict[str, Any]:
    host: dict[str, Any] = json.loads(DEBIAN_FACTS.read_text())["host"]
    return host | {"hostname": "deb01"}


def _rocky_host() -> dict[str, Any]:
    values = parse_os_release(ROCKY_OS_RELEASE.read_text())
    like = id_like(values)
    os_facts = {
        "id": values["ID"],
        "id_like": like,
        "name": values["NAME"],
        "pretty_name": values["PRETTY_NAME"],
        "version_id": values["VERSION_ID"],
        "version_codename": None,
        "family": family_of(values["ID"], like),
    }
    assert os_facts["family"] == "rhel"
    return _debian_host() | {"hostname": "rocky01", "os": os_facts}


@pytest.fixture
def fix_audit(database: Database, db_url: str, tmp_path: Path) -> Iterator[tuple[Any, Database]]:
    packs = tmp_path / "packs"
    packs.mkdir()
    (packs / "fix-test.yaml").write_text(PACK, encoding="utf-8")
    policy = load_server_policy(
        ServerConfig(rules=(RULES_DIR, packs), frameworks=(FRAMEWORK,), waivers=(WAIVERS,))
    )
    fleet = Fleet(database, policy, db_url)
    exposed = [telnet()]
    fleet.report(
        "so-a", "agent-deb", "deb01", collected_at=T1, listening=exposed, host=_debian_host()
    )
    fleet.report(
        "so-a", "agent-rocky", "rocky01", collected_at=T1, listening=exposed, host=_rocky_host()
    )
    # make_facts' host says no family: unknown, so no command.
    fleet.report("so-b", "agent-plain", "plain01", collected_at=T1, listening=exposed)
    yield audit_policy(policy), database


def _audit(fix_audit: tuple[Any, Database]) -> AuditReport:
    policy, database = fix_audit
    with database.session() as session:
        return build_audit(session, policy, as_of=BETWEEN, agency=None, stale_after_seconds=86400)


EXPECTED = {
    ("deb01", "TEST-FIX-TELNET"): DEBIAN_FIX,
    ("rocky01", "TEST-FIX-TELNET"): RHEL_FIX,
    ("plain01", "TEST-FIX-TELNET"): None,
    ("deb01", "TEST-FIX-HOSTILE"): HOSTILE_FIX,
    ("rocky01", "TEST-FIX-HOSTILE"): None,  # no rhel command
    ("plain01", "TEST-FIX-HOSTILE"): None,
    ("deb01", "TEST-TELNET"): None,  # tests/data/server/rules: no command
    ("rocky01", "TEST-TELNET"): None,
}


def test_model_and_json(fix_audit: tuple[Any, Database]) -> None:
    report = _audit(fix_audit)
    found = {(f.host, f.rule_id): f.fix for a in report.agencies for f in a.findings}
    assert {k: found[k] for k in EXPECTED} == EXPECTED
    for lang in (Lang.VI, Lang.EN):
        data = json.loads(render_audit(report, Format.JSON, lang))
        dumped = {
            (f["host"], f["rule_id"]): f["fix"] for a in data["agencies"] for f in a["findings"]
        }
        assert {k: dumped[k] for k in EXPECTED} == EXPECTED
    # The streamed JSON (families read from the database) is the whole model's.
    policy, database = fix_audit
    with database.session() as session:
        outline, detail = audit_outline(
            session, policy, as_of=BETWEEN, agency=None, stale_after_seconds=86400
        )
        assert isinstance(detail, StoredDetail)
        streamed = b"".join(stream_audit(outline, Format.JSON, Lang.EN, detail))
    assert streamed == render_audit(report, Format.JSON, Lang.EN)


def _check_cells(header: list[Any], rows: list[list[Any]], lang: Lang) -> None:
    column = header.index(t("fix", lang))
    host, rule = header.index(t("host", lang)), header.index(t("rule", lang))
    cells = {(r[host], r[rule]): r[column] for r in rows}
    for key, command in EXPECTED.items():
        if command == HOSTILE_FIX:
            # The formula is prefixed, the override escaped: shown, never run.
            assert cells[key] == "'" + HOSTILE_FIX.replace("\u202e", "\\u202e")
        else:
            assert cells[key] in ((command,) if command else (None, ""))


@pytest.mark.parametrize("lang", [Lang.VI, Lang.EN])
def test_csv_and_xlsx(fix_audit: tuple[Any, Database], lang: Lang) -> None:
    report = _audit(fix_audit)
    text = render_audit(report, Format.CSV, lang).decode("utf-8-sig")
    table = list(csv.reader(io.StringIO(text)))
    assert t("fix", lang) == ("Lệnh khắc phục" if lang is Lang.VI else "Fix command")
    _check_cells(table[0], table[1:], lang)
    assert "\u202e" not in text

    book = load_workbook(io.BytesIO(render_audit(report, Format.XLSX, lang)))
    sheet = book[t("findings", lang)[:31]]
    rows = [list(r) for r in sheet.iter_rows(values_only=True)]
    _check_cells(rows[0], rows[1:], lang)
    # openpyxl reads a formula back as its "=..." text: none may start so.
    assert all(not str(c.value or "").startswith("=") for row in sheet.iter_rows() for c in row)


@pytest.mark.parametrize("lang", [Lang.VI, Lang.EN])
def test_html_shows_the_command_as_inert_code(
    fix_audit: tuple[Any, Database], lang: Lang, tmp_path: Path
) -> None:
    report = _audit(fix_audit)
    page = render_audit(report, Format.HTML, lang)
    dom, _log = open_in_chromium(page, tmp_path)
    tags = parse(dom)
    assert [t for t, _ in tags.tags if t in {"script", "img"}] == []
    assert f"<code>{DEBIAN_FIX}</code>" in dom and f"<code>{RHEL_FIX}</code>" in dom
    shown = HOSTILE_FIX.replace("\u202e", "\\u202e")
    assert (
        "<code>=cmd|' /C calc'!A0 &lt;/script&gt; \\u202eevil "
        "&lt;img src=x onerror=alert(1) x=</code>"
    ) in dom
    assert shown in "".join(tags.text) and "\u202e" not in dom
    # Under the remediation text of its row.
    remediation = "Gỡ Telnet." if lang is Lang.VI else "Remove Telnet."
    assert f'{remediation}<div class="fix"><code>{DEBIAN_FIX}</code></div>' in dom


def test_pdf_shows_the_commands(fix_audit: tuple[Any, Database], tmp_path: Path) -> None:
    chromium()
    pdftotext = require_tool("pdftotext")
    for lang in (Lang.VI, Lang.EN):
        target = tmp_path / f"audit-{lang.value}.pdf"
        target.write_bytes(render_audit(_audit(fix_audit), Format.PDF, lang))
        text = subprocess.run(
            [pdftotext, "-enc", "UTF-8", str(target), "-"],
            capture_output=True,
            timeout=TIMEOUT,
            check=True,
        ).stdout.decode("utf-8")

        # A command wraps in the narrow column, and pdftotext joins a word broken
        # after a hyphen: compare without spaces and hyphens.
        def bare(value: str) -> str:
            return re.sub(r"[\s-]", "", value)

        assert bare(DEBIAN_FIX) in bare(text) and bare(RHEL_FIX) in bare(text)
        assert "<img src=x" in " ".join(text.split())  # printed as text
