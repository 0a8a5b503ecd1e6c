"""file_integrity (issue 13): whether AIDE is initialised, scheduled and checking.

The real AIDE initialises a database over a tiny tree and checks it twice (clean,
then after a file changed), and the collector reads what AIDE wrote, from a root laid
out like a Debian host; the shipped FIM rules then judge the result. Fake trees cover
an installed-but-never-initialised AIDE (this Debian 12 machine's own state right
after `apt-get install aide`, recorded as its configuration and cron script), the
RHEL layout, and the paths a non-root agent may not read (as `nobody`, for real).
AIDE itself is never run by the collector.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import fastjsonschema

from agent.collectors.base import CollectContext, ErrorKind, Issue
from agent.collectors.fileintegrity import Outcome, collect_file_integrity, outcome_of
from rules.derived import add_derived
from rules.engine import evaluate_rule
from rules.facts import load_schema
from rules.language.loader import builtin_packs_dir, load_rules
from rules.results import Status
from tests.agent.conftest import DATA
from tests.agent.privileges import as_unprivileged
from tests.rules.conftest import facts_document
from tests.support import require_root, require_tool

AIDE_DATA = DATA / "aide"
# Read at import: the unprivileged children cannot read the checkout.
DEBIAN_CONF = (AIDE_DATA / "debian12-aide.conf").read_text("utf-8")
DEBIAN_CRON = (AIDE_DATA / "debian12-cron.daily-aide").read_text("utf-8")
CLEAN_LOG = (AIDE_DATA / "check-no-differences.log").read_text("utf-8")
CHANGED_LOG = (AIDE_DATA / "check-changed.log").read_text("utf-8")
VALIDATE = fastjsonschema.compile(load_schema())
RULES = load_rules([builtin_packs_dir() / "system-tools.yaml"])
FIM_RULES = ("FIM-NOT-INITIALISED", "FIM-NOT-SCHEDULED", "FIM-CHECK-STALE", "FIM-CHANGES-REPORTED")

# The configuration as the host sees it (DBDIR, LOGDIR) and as the test's AIDE run
# sees it (the same directories under the test's root).
CONF = """\
@@define DBDIR {root}/var/lib/aide
@@define LOGDIR {root}/var/log/aide
database_in=file:@@{{DBDIR}}/aide.db
database_out=file:@@{{DBDIR}}/aide.db.new
report_url=file:@@{{LOGDIR}}/aide.log
report_url=stdout
{root}/srv/watched p+u+g+sha256
"""


def _judge(data: dict[str, Any], issues: tuple[Any, ...], now: datetime) -> dict[str, Status]:
    errors = [
        {"domain": "file_integrity", "kind": i.kind.value, "reason": i.reason} for i in issues
    ]
    document = facts_document(file_integrity=data, errors=errors)
    document["collected_at"] = now.strftime("%Y-%m-%dT%H:%M:%SZ")
    add_derived(document, now)
    VALIDATE(document)
    statuses = {}
    for rule_id in FIM_RULES:
        rule = RULES.get(rule_id)
        assert rule is not None
        statuses[rule_id] = evaluate_rule(rule, document).status
    return statuses


def _fake_aide(root: Path) -> None:
    (root / "usr/bin").mkdir(parents=True, exist_ok=True)
    (root / "usr/bin/aide").write_bytes(b"")


def test_real_aide_database_and_check_logs(tmp_path: Path) -> None:
    aide = require_tool("aide")
    root = tmp_path / "host"
    for directory in ("etc/aide", "var/lib/aide", "var/log/aide", "srv/watched", "etc/cron.d"):
        (root / directory).mkdir(parents=True)
    (root / "srv/watched/index.php").write_text("<?php echo 'hello';\n")
    (root / "etc/aide/aide.conf").write_text(CONF.format(root=""))
    (root / "etc/cron.d/aide").write_text("0 5 * * * root /usr/bin/aide --check\n")
    _fake_aide(root)  # the collector looks for the binary; the test runs the real one
    run_conf = tmp_path / "run.conf"
    run_conf.write_text(CONF.format(root=root))
    ctx = CollectContext(root=root)

    before = collect_file_integrity(ctx)
    assert before.data["aide"]["database_exists"] is False
    assert before.data["aide"]["checked"] is False
    assert _judge(before.data, before.issues, datetime.now(UTC))["FIM-NOT-INITIALISED"] is (
        Status.FAIL
    )

    init = subprocess.run(
        [aide, "--init", "--config", str(run_conf)], capture_output=True, check=False
    )
    assert init.returncode == 0, init.stderr
    (root / "var/lib/aide/aide.db.new").rename(root / "var/lib/aide/aide.db")
    clean = subprocess.run(
        [aide, "--check", "--config", str(run_conf)], capture_output=True, check=False
    )
    assert clean.returncode == 0, clean.stderr
    collected = collect_file_integrity(ctx)
    aide_facts = collected.data["aide"]
    assert collected.issues == ()
    assert aide_facts["config"] == "/etc/aide/aide.conf"
    assert aide_facts["database"] == "/var/lib/aide/aide.db"
    assert aide_facts["database_exists"] is True
    db_mtime = datetime.fromtimestamp((root / "var/lib/aide/aide.db").stat().st_mtime, UTC)
    assert abs(datetime.fromisoformat(aide_facts["database_updated_at"]) - db_mtime) < timedelta(
        seconds=1
    )
    assert aide_facts["schedules"] == ["/etc/cron.d/aide"]
    assert aide_facts["scheduled"] is True
    assert aide_facts["last_check"]["log"] == "/var/log/aide/aide.log"
    assert aide_facts["last_check"]["outcome"] == "no_changes"
    statuses = _judge(collected.data, collected.issues, datetime.now(UTC))
    assert set(statuses.values()) == {Status.PASS}, statuses

    (root / "srv/watched/index.php").write_text("<?php system($_GET['c']);\n")
    changed = subprocess.run(
        [aide, "--check", "--config", str(run_conf)], capture_output=True, check=False
    )
    assert changed.returncode == 4  # AIDE's "changed entries" exit code
    after = collect_file_integrity(ctx).data
    assert after["aide"]["last_check"]["outcome"] == "changes"
    assert _judge(after, (), datetime.now(UTC))["FIM-CHANGES-REPORTED"] is Status.FAIL
    # The same log read eight days later: the check is stale.
    late = _judge(after, (), datetime.now(UTC) + timedelta(days=8))
    assert late["FIM-CHECK-STALE"] is Status.FAIL


def test_recorded_logs_and_dailyaidecheck_lines() -> None:
    assert outcome_of(CLEAN_LOG) is Outcome.NO_CHANGES
    assert outcome_of(CHANGED_LOG) is Outcome.CHANGES
    # Lines written by Debian's /usr/share/aide/bin/dailyaidecheck (aide-common 0.18.3),
    # copied from the script's printf formats.
    started = "aide run on web01.example.gov.vn started at 2026-11-30 01:52:11.\n"
    zero = started + "AIDE returned with a zero exit code. No changes detected!\n"
    assert outcome_of(zero) is Outcome.NO_CHANGES
    assert (
        outcome_of(
            started + "AIDE returned with exit code 5. Added and changed entries detected!\n"
        )
        is Outcome.CHANGES
    )
    assert (
        outcome_of(started + "AIDE returned with exit code 17. Invalid configuration!\n")
        is Outcome.FAILED
    )
    assert outcome_of(started + "database not present.\n") is Outcome.FAILED
    assert outcome_of(started) is Outcome.UNKNOWN


def test_installed_never_initialised_debian_layout(tmp_path: Path) -> None:
    _fake_aide(tmp_path)
    (tmp_path / "etc/aide").mkdir(parents=True)
    (tmp_path / "etc/aide/aide.conf").write_text(DEBIAN_CONF)
    (tmp_path / "etc/cron.daily").mkdir(parents=True)
    (tmp_path / "etc/cron.daily/aide").write_text(DEBIAN_CRON)
    (tmp_path / "var/lib/aide").mkdir(parents=True)
    collected = collect_file_integrity(CollectContext(root=tmp_path))
    aide = collected.data["aide"]
    assert collected.issues == ()
    assert aide["database"] == "/var/lib/aide/aide.db"  # from the recorded database_in
    assert aide["database_exists"] is False
    assert aide["schedules"] == ["/etc/cron.daily/aide"]  # no systemd here: cron runs it
    statuses = _judge(collected.data, collected.issues, datetime.now(UTC))
    assert statuses["FIM-NOT-INITIALISED"] is Status.FAIL
    assert statuses["FIM-NOT-SCHEDULED"] is Status.PASS
    assert statuses["FIM-CHECK-STALE"] is Status.NOT_APPLICABLE
    assert statuses["FIM-CHANGES-REPORTED"] is Status.NOT_APPLICABLE

    # On a systemd host Debian's cron script exits at once: only an enabled timer counts.
    (tmp_path / "run/systemd/system").mkdir(parents=True)
    aide = collect_file_integrity(CollectContext(root=tmp_path)).data["aide"]
    assert aide["scheduled"] is False
    assert _judge({"aide": aide}, (), datetime.now(UTC))["FIM-NOT-SCHEDULED"] is Status.FAIL
    wants = tmp_path / "etc/systemd/system/timers.target.wants"
    wants.mkdir(parents=True)
    (wants / "dailyaidecheck.timer").symlink_to("/lib/systemd/system/dailyaidecheck.timer")
    aide = collect_file_integrity(CollectContext(root=tmp_path)).data["aide"]
    assert aide["schedules"] == ["systemd:dailyaidecheck.timer"]


def test_rhel_layout_and_defaults(tmp_path: Path) -> None:
    _fake_aide(tmp_path)
    # RHEL 8/9's AIDE 0.16 names the database `database=` (RHEL 10 and Fedora moved to
    # database_in), through the same DBDIR macro.
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc/aide.conf").write_text(
        "@@define DBDIR /var/lib/aide\n@@define LOGDIR /var/log/aide\n"
        "database=file:@@{DBDIR}/aide.db.gz\ndatabase_out=file:@@{DBDIR}/aide.db.new.gz\n"
        "report_url=file:@@{LOGDIR}/aide.log\nreport_url=stdout\n"
    )
    (tmp_path / "var/lib/aide").mkdir(parents=True)
    (tmp_path / "var/lib/aide/aide.db.gz").write_bytes(b"\x1f\x8b")
    (tmp_path / "var/spool/cron").mkdir(parents=True)
    (tmp_path / "var/spool/cron/root").write_text("# 0 4 * * * /usr/sbin/aide --check\n")
    aide = collect_file_integrity(CollectContext(root=tmp_path)).data["aide"]
    assert aide["database"] == "/var/lib/aide/aide.db.gz"
    assert aide["database_exists"] is True
    assert aide["scheduled"] is False  # a commented-out line schedules nothing
    (tmp_path / "var/spool/cron/root").write_text("0 4 * * * /usr/sbin/aide --check\n")
    assert collect_file_integrity(CollectContext(root=tmp_path)).data["aide"]["schedules"] == [
        "/var/spool/cron/root"
    ]
    # No database setting at all: the distribution's default for that file.
    (tmp_path / "etc/aide.conf").write_text("/etc p+u+g+sha256\n")
    assert collect_file_integrity(CollectContext(root=tmp_path)).data["aide"]["database"] == (
        "/var/lib/aide/aide.db.gz"
    )


def test_not_installed(tmp_path: Path) -> None:
    collected = collect_file_integrity(CollectContext(root=tmp_path))
    assert collected.data["aide"]["installed"] is False
    assert collected.data["aide"]["config"] is None
    statuses = _judge(collected.data, collected.issues, datetime.now(UTC))
    assert set(statuses.values()) == {Status.NOT_APPLICABLE}


def test_unreadable_paths_are_errors_not_passes() -> None:
    """As on Debian: /var/lib/aide 0700 `_aide`, the log 0640 `_aide:adm`, root's
    crontab directory 1730; the agent running as `nobody` reads none of them."""
    require_root()  # to make files another user cannot read
    root = Path(tempfile.mkdtemp(prefix="canhgac-aide-", dir="/tmp"))  # nobody can enter
    try:
        _unreadable_tree(root)
    finally:
        shutil.rmtree(root)


def _unreadable_tree(root: Path) -> None:
    _fake_aide(root)
    (root / "etc/aide").mkdir(parents=True)
    (root / "etc/aide/aide.conf").write_text(DEBIAN_CONF)
    (root / "var/lib/aide").mkdir(parents=True)
    (root / "var/lib/aide/aide.db").write_bytes(b"")
    (root / "var/lib/aide").chmod(0o700)
    (root / "var/log/aide").mkdir(parents=True)
    (root / "var/log/aide/aide.log").write_text(CHANGED_LOG)
    (root / "var/log/aide/aide.log").chmod(0o640)
    (root / "var/spool/cron/crontabs").mkdir(parents=True)
    (root / "var/spool/cron/crontabs/root").write_text("0 5 * * * aide --check\n")
    (root / "var/spool/cron/crontabs").chmod(0o1730)
    for directory in ("", "usr", "usr/bin", "etc", "etc/aide", "var", "var/lib", "var/log"):
        (root / directory).chmod(0o755)
    (root / "var/log/aide").chmod(0o2755)
    (root / "var/spool").chmod(0o755)
    (root / "var/spool/cron").chmod(0o755)

    def collect() -> list[Any]:
        collected = collect_file_integrity(CollectContext(root=root))
        return [collected.data, [(i.kind.value, i.reason) for i in collected.issues]]

    data, issues = as_unprivileged(collect)
    aide = data["aide"]
    assert aide["database_exists"] is None
    assert aide["scheduled"] is None
    assert aide["checked"] is True
    assert aide["last_check"]["outcome"] is None
    assert aide["last_check"]["finished_at"]  # the directory lists: its time is known
    kinds = {reason.split(":")[0]: kind for kind, reason in issues}
    assert kinds == {
        "database_exists": ErrorKind.PERMISSION.value,
        "scheduled": ErrorKind.PERMISSION.value,
        "last_check.outcome": ErrorKind.PERMISSION.value,
    }, issues
    statuses = _judge(data, tuple(Issue(ErrorKind(k), r) for k, r in issues), datetime.now(UTC))
    assert statuses["FIM-NOT-INITIALISED"] is Status.ERROR
    assert statuses["FIM-NOT-SCHEDULED"] is Status.ERROR
    assert statuses["FIM-CHECK-STALE"] is Status.ERROR
    assert statuses["FIM-CHANGES-REPORTED"] is Status.ERROR

    # Root reads them all (the same tree).
    aide = collect_file_integrity(CollectContext(root=root)).data["aide"]
    assert aide["database_exists"] is True
    assert aide["scheduled"] is True
    assert aide["last_check"]["outcome"] == "changes"
