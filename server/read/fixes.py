"""Fix commands on the read API's findings and results (rules' `fix`, docs/rules.md).

Two shapes, chosen by what each answer already has in hand:

- every finding (`/findings`, `/hosts/{agent_id}`) carries `fixes`, its rule's
  commands by OS family, from the collector's current rule set: no database read;
- the host detail, which loads the host's latest facts anyway, also says the host's
  `os_family` (`host.os.family` through `rules.language.model.os_family`) and gives
  each of its findings and failing results the one `fix` for that family.

A per-finding `fix` on `/findings` would need the `host` domain of every host on the
page (up to a page of 1,000 findings, so up to 1,000 facts blobs decompressed and
parsed per request of a list that dashboards poll); the rule's map plus the family
from the host detail gives the same command without that cost.

The rule set is passed in (the policy of the request), so every replica with the same
policy answers the same; a rule no longer in the policy has no commands.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rules.language.model import OsFamily, RuleSet, os_family
from rules.results import Status

FixMaps = Mapping[str, Mapping[OsFamily, str]]  # rule id -> family -> command


def fix_maps(ruleset: RuleSet) -> dict[str, Mapping[OsFamily, str]]:
    """Each rule's commands by family (rules without any are left out)."""
    return {rule.id: rule.fix for rule in ruleset.rules if rule.fix}


def _commands(fixes: FixMaps, rule_id: str) -> dict[str, str]:
    # Enum order, the same for every finding.
    commands = fixes.get(rule_id, {})
    return {family.value: commands[family] for family in OsFamily if family in commands}


def with_fix_maps(page: dict[str, Any], fixes: FixMaps) -> dict[str, Any]:
    """`page` (a `queries.list_findings` answer) with each finding's `fixes`."""
    for finding in page["items"]:
        finding["fixes"] = _commands(fixes, finding["rule_id"])
    return page


def with_host_fixes(detail: dict[str, Any], fixes: FixMaps) -> dict[str, Any]:
    """`detail` (a `queries.host_detail` answer) with the host's `os_family`, each
    finding's `fixes` and `fix`, and each failing result's `fix` (null otherwise)."""
    facts = detail.get("facts")
    family = os_family(facts.get("host")) if isinstance(facts, Mapping) else None
    detail["os_family"] = family.value if family is not None else None

    def command(rule_id: str) -> str | None:
        return None if family is None else fixes.get(rule_id, {}).get(family)

    for finding in detail["findings"]:
        finding["fixes"] = _commands(fixes, finding["rule_id"])
        finding["fix"] = command(finding["rule_id"])
    for result in detail["results"]:
        failing = result["status"] == Status.FAIL.value
        result["fix"] = command(result["rule_id"]) if failing else None
    return detail
