"""The Prometheus recording and alert rules (dashboards/prometheus) checked and unit-tested
by Debian's promtool, and every alert tested both firing and not firing."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import yaml

from tests.support import require_tool

RULES = Path(__file__).resolve().parents[2] / "dashboards" / "prometheus"
ANNOTATIONS = ("summary_vi", "description_vi", "summary_en", "description_en")
# Words that would betray English left in a Vietnamese annotation.
ENGLISH = re.compile(r"\b(the|host|certificate|expires?|score|days?|agency|collector)\b", re.I)


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [require_tool("promtool"), *args],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        cwd=RULES,
    )


def alerts() -> list[dict[str, Any]]:
    document = yaml.safe_load((RULES / "alerts.yml").read_text())
    return [rule for group in document["groups"] for rule in group["rules"] if "alert" in rule]


def test_rules_pass_promtool_check() -> None:
    done = promtool("check", "rules", "recording.yml", "alerts.yml")
    assert done.returncode == 0, done.stdout + done.stderr


def test_alert_unit_tests_pass() -> None:
    done = promtool("test", "rules", "tests/alerts_test.yml")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout


def test_every_alert_is_tested_firing_and_not_firing() -> None:
    document = yaml.safe_load((RULES / "tests" / "alerts_test.yml").read_text())
    firing: set[str] = set()
    quiet: set[str] = set()
    for case in document["tests"]:
        for check in case.get("alert_rule_test", []):
            (firing if check.get("exp_alerts") else quiet).add(check["alertname"])
    names = {rule["alert"] for rule in alerts()}
    assert names, "no alert rules found"
    assert names - firing == set(), "alerts never tested firing"
    assert names - quiet == set(), "alerts never tested not firing"


def test_alerts_are_labelled_and_annotated_in_both_languages() -> None:
    for rule in alerts():
        assert rule["labels"]["severity"] in {"warning", "critical"}, rule["alert"]
        annotations = rule["annotations"]
        assert set(annotations) == set(ANNOTATIONS), rule["alert"]
        for key in ("summary_vi", "description_vi"):
            text = re.sub(r"\{\{.*?\}\}", "", annotations[key])  # template code is not prose
            assert not ENGLISH.search(text), f"{rule['alert']}.{key}: {text}"
            assert re.search(r"[^\x00-\x7f]", text), f"{rule['alert']}.{key} is not Vietnamese"
