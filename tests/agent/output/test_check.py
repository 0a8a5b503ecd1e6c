"""`canhgac-agent check` as an administrator reads it: real rule packs (the built-in
ones and the agent tests' pack) over facts collected by the real collectors from the
recorded Debian 12 root tree, formatted at several terminal widths."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from agent.cli.main import main
from agent.collectors.base import CollectContext
from agent.collectors.system import ProcessOwner
from agent.document import collect_facts
from agent.output import check as check_output
from agent.output.check import (
    ALL_COMMAND,
    JSON_COMMAND,
    Layout,
    format_report,
    format_score,
    remediations,
)
from agent.state.identity import Identity
from rules.engine import evaluate
from rules.facts import Domain
from rules.language.loader import builtin_packs_dir, load_rules
from rules.policy.scoring import score_results
from rules.results import RuleResult, Status
from tests.agent.conftest import DATA, ROOTS
from tests.agent.fakes import FakeSystem, RecordedRunner, tcp

PACK = DATA / "rules" / "test-pack.yaml"
# Words of the English report that must never appear in the Vietnamese one.
ENGLISH = re.compile(
    r"\b(fail|failing|pass|error|could not|checked|more|see|fix|rules?|high|medium|low|"
    r"critical|info|waived|applicable|score|certificate|listed|the|and|of)\b",
    re.IGNORECASE,
)


def _facts(*listeners: Any) -> dict[str, Any]:
    owners = {n: ProcessOwner(f"proc{n}", "root") for n in range(1, 20)}
    ctx = CollectContext(
        root=ROOTS / "debian12",
        run=RecordedRunner(),
        system=FakeSystem(sockets=list(listeners), owners=owners),
        fqdn_resolver=lambda _n: None,
    )
    return collect_facts(ctx, Identity("test-agent", 1))


def _evaluate(paths: list[Path], facts: dict[str, Any]) -> tuple[list[RuleResult], Any]:
    ruleset = load_rules(paths)
    return evaluate(ruleset, facts), remediations(ruleset, facts)


def _heads(lines: list[str]) -> list[str]:
    return [line.split("] ", 1)[1].split(":", 1)[0] for line in lines if line.startswith("[")]


@pytest.fixture(scope="module")
def builtin() -> tuple[list[RuleResult], Any]:
    # Telnet and HTTP listeners on every address: failing rules with several items.
    listeners = [tcp(f"10.0.0.{n}", port, n) for n in range(1, 8) for port in (23, 80)]
    return _evaluate([builtin_packs_dir()], _facts(*listeners))


def test_failing_then_error_by_severity_passing_counted_not_listed() -> None:
    results, fixes = _evaluate([PACK], _facts(tcp("0.0.0.0", 23, 1), tcp("0.0.0.0", 80, 2)))
    lines = format_report(results, fixes, "en", Layout(width=100))
    assert _heads(lines) == ["TEST-TELNET", "TEST-HTTP", "TEST-SSH"]
    assert lines[0] == "Failing rules: 2"
    assert "Rules that could not be checked: 1" in lines
    assert "TEST-HOSTNAME" not in "\n".join(lines)
    assert lines[-1] == f"pass: 1; not applicable: 0; waived: 0 (listed by: {ALL_COMMAND})."
    listed = format_report(results, fixes, "en", Layout(width=100, show_all=True))
    assert _heads(listed)[-1] == "TEST-HOSTNAME"
    assert "[PASS, low] TEST-HOSTNAME: Valid hostname" in listed


def test_each_failing_rule_shows_its_remediation(builtin: tuple[list[RuleResult], Any]) -> None:
    results, fixes = builtin
    failing = [r for r in results if r.status is Status.FAIL]
    assert len(failing) >= 3
    text = " ".join(" ".join(format_report(results, fixes, "en", Layout(width=1000))).split())
    for result in failing:
        assert f"Fix: {' '.join(fixes[result.rule_id].text.en.split())}" in text
    vi = " ".join(" ".join(format_report(results, fixes, "vi", Layout(width=1000))).split())
    for result in failing:
        assert f"Khắc phục: {' '.join(fixes[result.rule_id].text.vi.split())}" in vi


@pytest.mark.parametrize("width", [40, 57, 80, 132])
@pytest.mark.parametrize("lang", ["vi", "en"])
def test_lines_fit_the_width_and_words_are_not_cut(
    builtin: tuple[list[RuleResult], Any], width: int, lang: str
) -> None:
    results, fixes = builtin
    score = score_results(results)
    lines = format_report(results, fixes, lang, Layout(width=width)) + format_score(
        score, lang, width
    )
    assert max(len(line) for line in lines) <= width
    # Every word that fits on a line appears whole: wrapping happens only at spaces.
    wide = format_report(results, fixes, lang, Layout(width=10_000))
    words = {w for line in wide for w in line.split() if len(w) <= width - 8}
    narrow = {w for line in lines for w in line.split()}
    assert words <= narrow


def test_many_items_end_with_and_n_more_pointing_at_the_command(
    builtin: tuple[list[RuleResult], Any],
) -> None:
    results, fixes = builtin
    telnet = next(r for r in results if r.status is Status.FAIL and len(r.items) == 7)
    lines = format_report(results, fixes, "en", Layout(width=200))
    start = lines.index(next(line for line in lines if f"] {telnet.rule_id}:" in line))
    block = lines[start : lines.index("", start)]
    assert sum(1 for line in block if line.startswith("    - ")) == 3
    assert f"      ... and 4 more (see: {JSON_COMMAND})" in block
    vi = format_report(results, fixes, "vi", Layout(width=200))
    assert f"      ... và 4 mục khác (xem: {JSON_COMMAND})" in vi


def test_error_says_could_not_be_checked_and_why_in_words() -> None:
    facts = _facts()
    del facts["certificates"]
    facts["errors"] = [{"domain": "certificates", "kind": "timeout", "reason": "budget"}]
    results, fixes = _evaluate([builtin_packs_dir()], facts)
    errored = [r for r in results if r.status is Status.ERROR]
    assert errored, "a certificates rule must be in error without the domain"
    en = format_report(results, fixes, "en", Layout(width=300))
    vi = format_report(results, fixes, "vi", Layout(width=300))
    why_en = "    Could not be checked: the agent could not read the certificates: "
    assert f"{why_en}the collection timed out." in en
    why_vi = "    Không kiểm tra được: tác tử không đọc được chứng thư số: "
    assert f"{why_vi}việc thu thập quá thời gian cho phép." in vi
    # The engine's wording is for rule authors; it is not what the administrator reads.
    for engine_words in ("is missing", "fact path", "collector '"):
        assert engine_words not in "\n".join(en + vi)


def test_error_for_a_domain_the_facts_lack_and_for_a_missing_field() -> None:
    facts = _facts()
    assert "ssh" not in facts  # the recorded root has no sshd: TEST-SSH reads nothing
    # A facts file from an agent that did not say why (no `errors` entry for ssh).
    facts["errors"] = [e for e in facts["errors"] if e["domain"] != "ssh"]
    results, fixes = _evaluate([PACK], facts)
    en = "\n".join(format_report(results, fixes, "en", Layout(width=300)))
    assert "Could not be checked: the facts contain no SSH configuration" in en
    del facts["host"]["hostname"]
    facts["errors"] = []  # nothing said about the host domain either
    results, fixes = _evaluate([PACK], facts)
    vi = "\n".join(format_report(results, fixes, "vi", Layout(width=300)))
    assert "thiếu một giá trị mà quy tắc cần trong dữ liệu về thông tin máy chủ" in vi


def test_vietnamese_mode_has_no_english_and_a_decimal_comma(
    builtin: tuple[list[RuleResult], Any],
) -> None:
    results, fixes = builtin
    score = score_results(results)
    assert score.ratio is not None and round(score.ratio * 1000) % 10 != 0
    report = format_report(results, fixes, "vi", Layout(width=100, show_all=True))
    # Rule ids, commands and host values (package names, addresses) are not prose:
    # drop them, then what remains must be Vietnamese.
    prose = [
        re.sub(r"`[^`]*`|\[[^]]*\] [A-Z0-9-]+:|canhgac-agent check[ a-z-]*|\S*[./@_]\S*", "", line)
        for line in report + format_score(score, "vi")
    ]
    # The messages and remediations come from the packs (they are checked by the rules
    # lint); the words the agent adds are checked here.
    ours = [line for line in prose if not line.startswith(("    - ", "    Khắc phục", "      "))]
    assert not [line for line in ours if ENGLISH.search(line)], ours
    heads = [line for line in report if line.startswith("[")]
    assert any(h.startswith("[KHÔNG ĐẠT, mức cao]") for h in heads)
    percent = f"{score.ratio * 100:.1f}".replace(".", ",")
    assert format_score(score, "vi")[0].startswith(f"Điểm tuân thủ cục bộ: {percent}%")
    assert f"{score.ratio * 100:.1f}%" in format_score(score, "en")[0]


def test_host_strings_are_escaped() -> None:
    facts = _facts(tcp("0.0.0.0", 23, 1))
    facts["listening"][0]["process"] = "telnetd\x1b[2J\u202e"
    results, fixes = _evaluate([PACK], facts)
    text = "\n".join(format_report(results, fixes, "en", Layout(width=120)))
    assert "\x1b" not in text and "\u202e" not in text
    assert "telnetd\\x1b[2J\\u202e" in text


def test_cli_all_and_terminal_width(tmp_path: Path) -> None:
    path = tmp_path / "facts.json"
    path.write_text(json.dumps(_facts(tcp("0.0.0.0", 23, 1))))
    base = ["check", "--rules", str(PACK), "--facts", str(path), "--lang", "en"]
    narrow = CliRunner().invoke(main, base, env={"COLUMNS": "45"})
    assert narrow.exit_code == 1, narrow.output
    assert max(len(line) for line in narrow.stdout.splitlines()) <= 45
    assert "TEST-HOSTNAME" not in narrow.stdout
    listed = CliRunner().invoke(main, [*base, "--all"], env={"COLUMNS": "200"})
    assert "[PASS, low] TEST-HOSTNAME: Valid hostname" in listed.stdout
    assert "[PASS, medium] TEST-HTTP: Plain HTTP" in listed.stdout


def test_collector_notes_in_vietnamese_have_no_english_reason(tmp_path: Path) -> None:
    facts = _facts()
    facts["errors"] = [{"domain": "certificates", "kind": "permission", "reason": "denied: /x"}]
    facts.pop("certificates", None)  # the whole domain is missing, not a part of it
    path = tmp_path / "facts.json"
    path.write_text(json.dumps(facts))
    base = ["check", "--rules", str(PACK), "--facts", str(path)]
    vi = CliRunner().invoke(main, base)
    assert (
        "lưu ý: tác tử không đọc được chứng thư số: không đủ quyền đọc (hãy chạy với quyền root)"
        in vi.stderr
    )
    assert "denied" not in vi.stderr and "permission" not in vi.stderr
    en = CliRunner().invoke(main, [*base, "--lang", "en"])
    assert "note: certificates: permission: denied: /x" in en.stderr


def test_more_hints_repeat_the_options_that_chose_facts_and_rules(tmp_path: Path) -> None:
    odd = tmp_path / "facts of web01; rm -rf x.json"  # a path a shell would misread
    facts = _facts(*[tcp(f"10.0.0.{n}", 23, n) for n in range(1, 6)])
    odd.write_text(json.dumps(facts))
    argv = ["check", "--rules", str(PACK), "--facts", str(odd), "--lang", "en"]
    done = CliRunner().invoke(main, argv, env={"COLUMNS": "400"})
    command = f"canhgac-agent check --rules {PACK} --facts '{odd}' --lang en"
    assert f"... and 2 more (see: {command} --format json)" in done.stdout
    assert f"(listed by: {command} --all)." in done.stdout
    vi = CliRunner().invoke(main, argv[:-2], env={"COLUMNS": "400"})
    assert f"(xem: canhgac-agent check --rules {PACK} --facts '{odd}' --format json)" in vi.stdout


def test_every_facts_domain_has_a_name_in_both_languages() -> None:
    """An error note names the domain a rule needed: a domain without a name would
    print its English key in Vietnamese mode."""
    missing = [d.value for d in Domain if d.value not in check_output._DOMAINS]
    assert missing == []


def test_a_partly_read_domain_is_not_called_unread_in_vietnamese() -> None:
    """Endpoints skipped while every certificate file was read: the note says part of
    the certificates was read, not that none was."""
    partial = check_output.note_line("certificates", "skipped", "904 endpoints", "vi", True)
    whole = check_output.note_line("certificates", "skipped", "904 endpoints", "vi")
    assert "chỉ đọc được một phần chứng thư số" in partial
    assert "không đọc được chứng thư số" in whole
    assert "endpoints" not in partial + whole  # no English system text in Vietnamese


def test_an_unknown_domain_is_explained_and_notes_fit_the_width(tmp_path: Path) -> None:
    """A domain the agent read only in part (unreadable /proc/<pid>/maps): the rule
    over it is 'could not be checked' because the facts are unknown, said in words;
    the collector's note, a long line of the host's words, wraps like the report."""
    facts = _facts()
    facts["deleted_libraries"] = {"complete": False, "processes": None}
    reason = "1 process(es) whose /proc/<pid>/maps could not be read; run as root"
    facts["errors"] = [{"domain": "deleted_libraries", "kind": "permission", "reason": reason}]
    path = tmp_path / "facts.json"
    path.write_text(json.dumps(facts))
    base = ["check", "--facts", str(path)]
    en = CliRunner().invoke(main, [*base, "--lang", "en"], env={"COLUMNS": "60"})
    assert en.exit_code in (1, 3), en.output
    head = "[COULD NOT BE CHECKED, medium] PROCESSES-DELETED-LIBRARIES"
    block = en.stdout.split(head, 1)[1].split("\n\n", 1)[0]
    assert "facts on processes using replaced libraries are unknown on this host" in " ".join(
        block.split()
    )
    assert "do not have the form" not in block
    note = en.stderr.splitlines()
    assert note[0].startswith("note: deleted_libraries: permission: 1 process(es)")
    assert len(note) > 1 and max(len(line) for line in note) <= 60
    assert " ".join(line.strip() for line in note).endswith("could not be read; run as root")
    vi = CliRunner().invoke(main, base, env={"COLUMNS": "60"})
    block = vi.stdout.split("PROCESSES-DELETED-LIBRARIES", 1)[1].split("\n\n", 1)[0]
    assert "không xác định (tác tử không đọc được)" in " ".join(block.split())
    assert not ENGLISH.search(block.replace("PROCESSES-DELETED-LIBRARIES", ""))
    assert max(len(line) for line in vi.stderr.splitlines()) <= 60
