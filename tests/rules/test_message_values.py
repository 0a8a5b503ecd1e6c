"""Shipped rules' messages write times and fractional numbers as each language does.

The engine renders an item's message in both languages from the same facts; the
agent's `check` output and the collector's stored results show those messages as
they are. Vietnamese must hold no English word and write dd/mm/yyyy and a decimal
comma; English holds the same values, written the English way. The item's key is
rendered without a language and keeps the facts' own text.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import pytest

from rules.derived import add_derived
from rules.engine import evaluate_rule
from rules.language.loader import builtin_packs_dir, load_rules
from rules.language.model import RuleSet
from rules.results import Status
from rules.tooling.fixtures import builtin_fixtures_dir, load_fixtures

from .conftest import facts_document

ISO_TIME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}")


@pytest.fixture(scope="module")
def builtin() -> RuleSet:
    return load_rules([builtin_packs_dir()])


def only_message(ruleset: RuleSet, rule_id: str, facts: dict[str, Any]) -> tuple[str, str, str]:
    rule = ruleset.get(rule_id)
    assert rule is not None
    result = evaluate_rule(rule, facts)
    assert result.status is Status.FAIL, result.errors
    [item] = result.items
    return item.key, item.message.vi, item.message.en


def test_stale_clamav_signatures_message(builtin: RuleSet) -> None:
    product = {
        "name": "ClamAV",
        "installed": True,
        "running": True,
        "version": "1.0.9",
        "signature_updated_at": "2026-10-30T01:10:00Z",
    }
    facts = facts_document(
        malware_protection={"any_installed": True, "any_running": True, "products": [product]}
    )
    # 28 days and 12 hours later: the derived age is the float 28.5
    add_derived(facts, datetime(2026, 11, 27, 13, 10, tzinfo=UTC))
    assert facts["malware_protection"]["products"][0]["signature_age_days"] == 28.5

    key, vi, en = only_message(builtin, "AV-SIGNATURES-OUTDATED", facts)

    assert key == "ClamAV"
    assert "cách đây 28,5 ngày" in vi
    assert "lần cuối 01:10 30/10/2026 (giờ quốc tế)" in vi
    assert "28.5" not in vi and "UTC" not in vi and not ISO_TIME.search(vi)
    assert "updated 28.5 days ago" in en
    assert "last on 2026-10-30 01:10 UTC" in en
    assert not ISO_TIME.search(en)


def test_aide_changes_message_gives_the_check_time(builtin: RuleSet) -> None:
    aide = {
        "installed": True,
        "config": "/etc/aide/aide.conf",
        "database": "/var/lib/aide/aide.db",
        "database_exists": True,
        "database_updated_at": "2026-11-30T20:52:58Z",
        "scheduled": True,
        "schedules": ["systemd:dailyaidecheck.timer"],
        "checked": True,
        "last_check": {
            "log": "/var/log/aide/aide.log",
            "finished_at": "2026-11-30T20:52:58Z",
            "outcome": "changes",
        },
    }
    facts = facts_document(file_integrity={"aide": aide})
    add_derived(facts, datetime(2026, 12, 1, 8, 0, tzinfo=UTC))

    _, vi, en = only_message(builtin, "FIM-CHANGES-REPORTED", facts)

    assert "kết thúc lúc 20:52 30/11/2026 (giờ quốc tế)" in vi
    assert "/var/log/aide/aide.log" in vi  # paths are left as they are
    assert not ISO_TIME.search(vi) and "UTC" not in vi
    assert "finished at 2026-11-30 20:52 UTC" in en


def test_expired_certificate_message_gives_the_expiry_date(builtin: RuleSet) -> None:
    rule = builtin.get("CERT-EXPIRED")
    assert rule is not None
    # The pack's own failing fixture, so the certificates keep the collector's shape.
    [case] = [
        case
        for case in load_fixtures([builtin_fixtures_dir() / "certificates.yaml"])
        if case.rule_id == "CERT-EXPIRED" and case.name.startswith("an expired endpoint leaf")
    ]
    result = evaluate_rule(rule, case.document())
    assert result.status is Status.FAIL and len(result.items) == 2
    for item in result.items:
        vi, en = item.message.vi, item.message.en
        assert not ISO_TIME.search(vi) and "UTC" not in vi, vi
        assert re.search(r"từ [0-9]{2}:[0-9]{2} [0-9]{2}/[0-9]{2}/[0-9]{4} \(giờ quốc tế\)$", vi)
        assert re.search(r"on [0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2} UTC$", en), en
