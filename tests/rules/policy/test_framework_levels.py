"""Security levels in frameworks: `level`/`levels`, a host's level from scopes, and the
shipped TCVN 11930:2017 file laid out as Circular 12/2022/TT-BTTTT's annex tables."""

from __future__ import annotations

from pathlib import Path

import pytest

from rules.errors import RuleLoadError
from rules.language.loader import builtin_packs_dir
from rules.policy.bundle import load_policy
from rules.policy.frameworks import (
    Framework,
    builtin_frameworks_dir,
    load_frameworks,
    security_level,
)
from rules.policy.scopes import Subject, load_scopes

HEADER = """framework:
  id: levels-test
  version: "1"
  title: {vi: Khung kiểm thử cấp độ, en: Level test framework}
  source: written for the tests
groups:
  - id: g
    title: {vi: Nhóm, en: Group}
requirements:
"""


def write(tmp_path: Path, requirements: str, name: str = "f.yaml") -> Path:
    path = tmp_path / name
    path.write_text(HEADER + requirements, encoding="utf-8")
    return path


def load_one(path: Path) -> Framework:
    (framework,) = load_frameworks([path])
    return framework


def test_level_levels_and_none_decide_where_a_requirement_applies(tmp_path: Path) -> None:
    framework = load_one(
        write(
            tmp_path,
            """  - {id: "a", group: g, level: 1, title: {vi: A, en: A}, rules: []}
  - {id: "b", group: g, levels: [5, 3, 4], title: {vi: B, en: B}, rules: []}
  - {id: "c", group: g, title: {vi: C, en: C}, rules: []}
  - {id: "d", group: g, level: null, title: {vi: D, en: D}, rules: []}
""",
        )
    )
    a, b, c, d = framework.requirements
    assert (a.level, a.levels) == (1, (1,))
    assert (b.level, b.levels) == (None, (3, 4, 5))  # sorted; no single level
    assert (c.level, c.levels) == (d.level, d.levels) == (None, ())
    assert [r.id for r in framework.requirements_at(1)] == ["a", "c", "d"]
    assert [r.id for r in framework.requirements_at(2)] == ["c", "d"]
    assert [r.id for r in framework.requirements_at(4)] == ["b", "c", "d"]
    # an unknown level keeps everything: nothing is dropped for a host nobody classified
    assert [r.id for r in framework.requirements_at(None)] == ["a", "b", "c", "d"]


def test_bad_levels_are_reported_with_their_positions(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """  - id: "a"
    group: g
    level: 2
    levels: [2]
    title: {vi: A, en: A}
  - id: "b"
    group: g
    levels: []
    title: {vi: B, en: B}
  - id: "c"
    group: g
    levels: [3, 0, 3, "4", true]
    title: {vi: C, en: C}
  - id: "d"
    group: g
    level: 6
    title: {vi: D, en: D}
  - id: "e"
    group: g
    levels: 3
    title: {vi: E, en: E}
""",
    )
    with pytest.raises(RuleLoadError) as error:
        load_frameworks([path])
    # HEADER is 9 lines: the first requirement starts on line 10
    assert [str(p).replace(str(path), "f") for p in error.value.problems] == [
        "f:13:5: give either 'level' or 'levels', not both",
        "f:17:13: 'levels' must be a non-empty list of levels",
        "f:21:17: a level must be an integer from 1 to 5",
        "f:21:20: level 3 is listed twice",
        "f:21:23: a level must be an integer from 1 to 5",
        "f:21:28: a level must be an integer from 1 to 5",
        "f:25:12: 'level' must be an integer from 1 to 5 or null",
        "f:29:13: 'levels' must be a non-empty list of levels",
    ]


def test_a_hosts_level_comes_from_the_security_level_groups(tmp_path: Path) -> None:
    scopes_file = tmp_path / "scopes.yaml"
    scopes_file.write_text(
        """groups:
  - id: security-level-2
    title: {vi: Hệ thống cấp độ 2, en: Level 2 systems}
    members:
      - {agency: so-tttt}
  - id: security-level-3
    title: {vi: Hệ thống cấp độ 3, en: Level 3 systems}
    members:
      - {agency: so-tttt, host: "dvc-*"}
      - {agency: so-yte, host: "his01"}
  - id: security-level-9
    members:
      - {agency: so-gddt}
# scopes.py today rejects a file without 'params' ("'params' must be a list")
params: []
""",
        encoding="utf-8",
    )
    scopes = load_scopes([scopes_file])
    assert security_level(scopes, Subject("so-tttt", "mail01")) == 2
    # in both groups: a host serving a level-3 system is judged at level 3
    assert security_level(scopes, Subject("so-tttt", "dvc-web01")) == 3
    assert security_level(scopes, Subject("so-yte", "his01")) == 3
    assert security_level(scopes, Subject("so-yte", "his02")) is None
    # only levels 1-5 exist: a group named for another number is not a level
    assert security_level(scopes, Subject("so-gddt", "web01")) is None


TCVN_11930 = builtin_frameworks_dir() / "tcvn-11930-2017.yaml"


@pytest.fixture(scope="module")
def tcvn_11930() -> Framework:
    return load_one(TCVN_11930)


def test_tcvn_11930_has_the_circulars_clauses_for_each_level(tcvn_11930: Framework) -> None:
    by_level = {level: tcvn_11930.requirements_at(level) for level in range(1, 6)}
    assert {level: len(reqs) for level, reqs in by_level.items()} == {
        1: 16,
        2: 22,
        3: 30,
        4: 30,
        5: 30,
    }
    for level, requirements in by_level.items():
        # level N is clause N+4, and every requirement has exactly its own level
        assert {r.id.split(".")[0] for r in requirements} == {str(level + 4)}
        assert all(r.levels == (level,) for r in requirements)
    ids = {r.id for r in tcvn_11930.requirements}
    # the clauses regulation notes single out, and what the tables never cite
    assert {"5.2.1.5", "6.2.1.6", "7.2.1.7", "8.2.1.7", "9.2.1.7", "6.1.5.4", "6.1.5.5"} <= ids
    assert not {f"{c}.2.1.1" for c in range(5, 10)} & ids
    assert "5.2.2.6" not in ids and "6.2.2.6" in ids  # handover from level 2
    assert [r.id for r in by_level[1] if r.group == "data-security"] == ["5.2.4.1"]
    assert [r.id for r in by_level[3] if r.group == "data-security"] == [
        "7.2.4.1",
        "7.2.4.2",
        "7.2.4.3",
    ]
    assert all(r.confidence == "verified" for r in tcvn_11930.requirements)
    backup = next(r for r in tcvn_11930.requirements if r.id == "7.2.4.3")
    assert backup.title.vi == "Bảo đảm an toàn dữ liệu: Sao lưu dự phòng (cấp độ 3)"
    assert backup.rules == ()  # no backup facts: not_assessed, never a pass


def test_every_shipped_framework_loads_against_the_builtin_rules() -> None:
    policy = load_policy([builtin_packs_dir()], frameworks=[builtin_frameworks_dir()])
    ids = {f.id for f in policy.frameworks}
    assert {"tcvn-11930-2017", "tcvn-14423-2026", "vn-four-layer-key-measures"} <= ids
    tcvn_2026 = next(f for f in policy.frameworks if f.id == "tcvn-14423-2026")
    # nothing in the 2026 edition is confirmed by a text we read
    assert {r.confidence for r in tcvn_2026.requirements} == {"unverified"}
    layers = next(f for f in policy.frameworks if f.id == "vn-four-layer-key-measures")
    confidence = {r.id: r.confidence for r in layers.requirements}
    assert {confidence[i] for i in ("1", "2", "3", "4", "2983-AV")} == {"verified"}
    assert {confidence[f"BP-{i}"] for i in range(1, 7)} == {"unverified"}


@pytest.mark.parametrize("level", [3, 4, 5])
def test_every_shipped_rule_evidences_a_tcvn_11930_clause_from_level_3(
    tcvn_11930: Framework, level: int
) -> None:
    """Levels 3-5 have every clause a host can evidence: a rule that no clause of the
    level names would never count in that level's compliance (levels 1-2 have no
    vulnerability clause, no access-from-inside clause at 1, logs wording unread)."""
    policy = load_policy([builtin_packs_dir()])
    mapped = {
        rule for requirement in tcvn_11930.requirements_at(level) for rule in requirement.rules
    }
    assert sorted(r.id for r in policy.ruleset.rules if r.id not in mapped) == []


def test_the_newest_rules_have_their_clauses(tcvn_11930: Framework) -> None:
    """The project's reading for the rules added after the rewrite (file header)."""
    clauses = {r.id: set(r.rules) for r in tcvn_11930.requirements}
    for level in range(5, 10):
        assert {"ACCT-SYSTEM-LOGIN-SHELL", "HOME-DIRS-ACCESSIBLE"} <= clauses[f"{level}.2.2.2"]
        assert {"LOG-FILES-WRITABLE", "LOG-FILES-WORLD-READABLE"} <= clauses[f"{level}.2.2.3"]
        assert {"MOUNT-OPTIONS-MISSING", "BRUTE-FORCE-UNPROTECTED"} <= clauses[f"{level}.2.2.4"]
        assert {"CERT-EXPIRY-SOON", "CERT-EXPIRY-CRITICAL"} <= clauses[f"{level}.2.3.1"]
        assert {"PROCESSES-DELETED-LIBRARIES", "PKG-SOURCE-UNVERIFIED"} <= clauses[f"{level}.1.5.2"]
