"""Rule results carried forward when nothing a rule reads has changed.

The engine is a pure function of the facts a rule reads and its parameters
(`rules.engine.inputs` tells which top-level keys). So for each host this keeps the
last raw engine result of each rule (before waivers, which the caller applies to
every result as before) with the key of its inputs: the digest of each key it reads,
and its parameter overrides. When a report's key for a rule is the same, the result
is carried forward: it is the result evaluating would give, object for object equal.

A key's digest (`KeyOf`) must name its content exactly. The ingest passes the digest
of each domain as stored (derived ages left out) for rules that read no derived age
of it, and the digest of its bytes as sent (ages included) for rules that do; keys
it cannot name (the collector's own `vulnerabilities`) make the rule evaluated.

This is one process's memory, bounded in hosts and in carried items (least recently
reported hosts forgotten first): a forgotten host is only evaluated in full. It
belongs to one loaded policy (`ServerPolicy.carry`), so a new policy starts empty
and re-evaluates everything.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass
from typing import Any

from rules.engine import ParamOverrides, evaluate_rule
from rules.engine.evaluation import compiled
from rules.language.model import RuleSet
from rules.results import RuleResult

# (key, reads derived ages of it, only the `errors` entries of these domains) -> a
# digest naming its content, or None: unknown.
KeyOf = Callable[[str, bool, frozenset[str] | None], Hashable | None]
MAX_HOSTS = 20_000
# Items (failing elements) kept over all hosts: each holds its evidence, so this
# bounds the memory (a few hundred bytes to a few KiB each).
MAX_ITEMS = 200_000

InputKey = tuple[str, tuple[Hashable, ...]]
# domain -> (digest of its content as stored, without derived ages; digest of its
# bytes as sent, ages included, or None when unknown)
DomainDigests = Mapping[str, tuple[str, str | None]]
_ABSENT = object()


def key_function(
    facts: Mapping[str, Any], document: Mapping[str, Any], digests: DomainDigests
) -> KeyOf:
    """Digests of the top-level keys of `facts` (what the engine judges: `document`
    as received, with what the collector added, such as `vulnerabilities`)."""

    def key_of(name: str, derived: bool, only: frozenset[str] | None) -> Hashable | None:
        value = facts.get(name, _ABSENT)
        if value is _ABSENT:
            return "absent"
        if only is not None and isinstance(value, list):
            # What `collector_reason` reads: the entries of the rule's own domains.
            value = [e for e in value if isinstance(e, Mapping) and e.get("domain") in only]
        entry = digests.get(name)
        if entry is not None and value is document.get(name) and only is None:
            if not derived:
                return "stored", entry[0]
            return None if entry[1] is None else ("sent", entry[1])
        if name in document or name == "errors":
            # The envelope and the agent's `errors` (to which the collector may add
            # its own entries): small values, named by themselves.
            return "value", json.dumps(value, sort_keys=True, ensure_ascii=False)
        return None  # computed by the collector, of unknown size: evaluate

    return key_of


@dataclass(frozen=True)
class _Memo:
    results: dict[str, tuple[InputKey, RuleResult]]  # rule id -> (inputs' key, result)
    weight: int


def _weight(results: Mapping[str, tuple[InputKey, RuleResult]]) -> int:
    return sum(1 + len(result.items) for _, result in results.values())


class ResultCarry:
    """Per host, each rule's last result and the key of what it read."""

    def __init__(self, max_hosts: int = MAX_HOSTS, max_items: int = MAX_ITEMS) -> None:
        self._max_hosts = max_hosts
        self._max_items = max_items
        self._hosts: OrderedDict[str, _Memo] = OrderedDict()
        self._items = 0
        self._lock = threading.Lock()
        self.evaluated = 0  # rules evaluated through this carry (for benchmarks, tests)
        self.carried = 0  # rules whose previous result was carried forward

    def evaluate(
        self,
        ruleset: RuleSet,
        facts: Mapping[str, Any],
        params: ParamOverrides,
        host: str,
        key_of: KeyOf,
    ) -> list[RuleResult]:
        """`rules.engine.evaluate(ruleset, facts, params)`, carrying forward each
        rule's result whose inputs are those of its last evaluation for `host`."""
        with self._lock:
            memo = self._hosts.get(host)
        before = memo.results if memo is not None else {}
        kept: dict[str, tuple[InputKey, RuleResult]] = {}
        digests: dict[Any, Hashable | None] = {}
        results: list[RuleResult] = []
        carried = 0
        for rule in ruleset.rules:
            overrides = params.get(rule.id)
            key = _input_key(compiled(rule, overrides), key_of, digests)
            previous = before.get(rule.id) if key is not None else None
            if previous is not None and previous[0] == key:
                result = previous[1]
                carried += 1
            else:
                result = evaluate_rule(rule, facts, overrides)
            if key is not None:
                kept[rule.id] = (key, result)
            results.append(result)
        self._remember(host, _Memo(kept, _weight(kept)))
        with self._lock:
            self.carried += carried
            self.evaluated += len(results) - carried
        return results

    def _remember(self, host: str, memo: _Memo) -> None:
        with self._lock:
            old = self._hosts.pop(host, None)
            if old is not None:
                self._items -= old.weight
            if memo.weight > self._max_items:
                return  # one host larger than the whole budget: never carried
            self._hosts[host] = memo
            self._items += memo.weight
            while len(self._hosts) > self._max_hosts or self._items > self._max_items:
                _, evicted = self._hosts.popitem(last=False)
                self._items -= evicted.weight

    def __len__(self) -> int:
        return len(self._hosts)


def _input_key(code: Any, key_of: KeyOf, digests: dict[Any, Hashable | None]) -> InputKey | None:
    """The key of what one compiled rule reads; None: it cannot be carried."""
    if code.inputs.keys is None:
        return None  # reads the whole document
    parts: list[Hashable] = []
    for wanted in code.wanted:
        digest = digests.get(wanted, _ABSENT)
        if digest is _ABSENT:
            digest = digests[wanted] = key_of(*wanted)
        if digest is None:
            return None
        parts.append(digest)
    return code.variant, tuple(parts)
