"""The engine's cache of compiled rules: per override set, and gone with its rules."""

from __future__ import annotations

import gc
from typing import Any

from rules.engine import evaluate, evaluate_rule
from rules.engine.evaluation import _CACHE
from rules.language.loader import builtin_packs_dir, load_rules
from rules.results import Status

from .conftest import facts_document, listener


def test_a_reloaded_policy_does_not_keep_the_old_one_compiled(
    debian_host: dict[str, Any],
) -> None:
    facts = facts_document(host=debian_host, listening=[listener(23)])
    ruleset = load_rules([builtin_packs_dir()])
    ids = {id(rule) for rule in ruleset.rules}
    evaluate(ruleset, facts)
    assert ids <= set(_CACHE)
    del ruleset
    gc.collect()
    assert not ids & set(_CACHE)


def test_overrides_alternate_without_one_answer_served_for_the_other(
    debian_host: dict[str, Any],
) -> None:
    facts = facts_document(host=debian_host, listening=[listener(2323)])
    telnet = load_rules([builtin_packs_dir()]).get("NET-TELNET-EXPOSED")
    assert telnet is not None
    statuses = [
        evaluate_rule(telnet, facts, overrides).status
        for overrides in (None, {"ports": [2323]}, None, {"ports": [2323]}, {"ports": [23]})
    ]
    assert statuses == [Status.PASS, Status.FAIL, Status.PASS, Status.FAIL, Status.PASS]
