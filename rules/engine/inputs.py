"""What a rule reads: the top-level keys of the facts document its result depends on.

A rule's result is a function of the facts it reads and its parameters only (the
engine has no clock and no state). So a caller that knows a key's content did not
change since the rule's last evaluation may carry that result forward instead of
evaluating again (`server.evaluation.carry`). This module tells which keys, from the
parsed rule, the same way the compiler resolves paths (`compiler.compile_path`):

- a leaf reads its path (relative to the current item inside a quantifier, `$.` from
  the document); `.` reads the whole item, or the whole document outside one;
- a quantifier reads its whole source list: a reported item's evidence is the whole
  element;
- templates read their names: an item key and a quantified rule's message in the
  reported item, a plain rule's message (and a `for_any`'s with no match) in the
  document;
- every rule may read `errors`: a missing or unreadable path names the collector's
  failure in the rule's error message (`compiler.collector_reason`), from the entry
  of that path's domain only.

It also tells which keys the rule reads *derived ages* of (`rules.derived`): those
change with the collection time while the stored content of their domain does not,
so a caller must key those keys on the values as evaluated, not on stored content.
"""

from __future__ import annotations

from dataclasses import dataclass

from rules.derived import DERIVED
from rules.language.model import AllOf, AnyOf, Expr, Leaf, Not, Quantified, Quantifier, Rule
from rules.language.templates import template_parts

Path = tuple[str, ...]
_WHOLE: Path = ()  # the whole document
# Every rule may read the agent's `errors` (see the module docstring).
ALWAYS_READ = "errors"
# Each derived field as a path with list steps left out ("certificates.days_left").
_DERIVED_PATHS: tuple[Path, ...] = tuple(
    (*(s for s in d.container.replace("[]", "").split(".") if s), d.field) for d in DERIVED
)


@dataclass(frozen=True)
class RuleInputs:
    """`keys`: top-level keys the rule reads (None: the whole document); `derived`:
    those of them whose derived ages it reads (directly, or within whole objects);
    `errors`: whether a path of the rule reads `errors` itself (if not, the rule reads
    only the `errors` entries of the domains in `keys`)."""

    keys: frozenset[str] | None
    derived: frozenset[str]
    errors: bool = True

    @property
    def wanted(self) -> tuple[tuple[str, bool, frozenset[str] | None], ...]:
        """Each key read, in order: (name, whether a derived age of it is read, for
        `errors` read only through failures the domains whose entries are read)."""
        keys = self.keys or frozenset()
        return tuple(
            (name, name in self.derived, keys if name == ALWAYS_READ and not self.errors else None)
            for name in sorted(keys)
        )


def _resolve(path: str, item: Path | None) -> Path:
    """`path` as an absolute path of the document, list indices left out."""
    if path == "$" or (path == "." and item is None):
        return _WHOLE
    if path == ".":
        return item or _WHOLE
    relative = not path.startswith("$.")
    steps = [*(item or ()), *path.split(".")] if relative else path[2:].split(".")
    return tuple(s for s in steps if not s.isdigit())


def _expr_paths(expr: Expr, item: Path | None, out: list[Path]) -> None:
    if isinstance(expr, Leaf):
        out.append(_resolve(expr.path, item))
    elif isinstance(expr, AllOf | AnyOf):
        for part in expr.items:
            _expr_paths(part, item, out)
    elif isinstance(expr, Not):
        _expr_paths(expr.item, item, out)
    else:
        source = _resolve(expr.source, item)
        out.append(source)  # every element, whole
        if expr.where is not None:
            _expr_paths(expr.where, source, out)
        _expr_paths(expr.assertion, source, out)


def _template_paths(template: str, item: Path | None, root: bool, out: list[Path]) -> None:
    """Names read in the item at `item` (None: none), and in the document if `root`."""
    for _, name in template_parts(template):
        if name is None or name.startswith("params."):
            continue
        if root:
            out.append(_resolve(name, None))
        if item is not None:
            out.append(_resolve(name, item))


def _touches(read: Path, derived: Path) -> bool:
    """Whether reading `read` reads `derived` (it contains it, or is it)."""
    shorter = min(len(read), len(derived))
    return read[:shorter] == derived[:shorter]


def rule_inputs(rule: Rule) -> RuleInputs:
    """The top-level keys `rule` reads, with `errors` always among them."""
    paths: list[Path] = []
    if rule.applies_to is not None:
        _expr_paths(rule.applies_to, None, paths)
    _expr_paths(rule.check, None, paths)
    check = rule.check
    item = _resolve(check.source, None) if isinstance(check, Quantified) else None
    # Messages are rendered per reported item; outside any item for a plain check, and
    # for a `for_any` that no item satisfied.
    root = not isinstance(check, Quantified) or check.quantifier is Quantifier.FOR_ANY
    if isinstance(check, Quantified) and check.key:
        _template_paths(check.key, item, False, paths)
    _template_paths(rule.message.vi, item, root, paths)
    _template_paths(rule.message.en, item, root, paths)
    if any(path == _WHOLE for path in paths):
        return RuleInputs(None, frozenset())
    named = frozenset(path[0] for path in paths)
    derived = frozenset(
        d[0] for d in _DERIVED_PATHS for path in paths if path[0] == d[0] and _touches(path, d)
    )
    return RuleInputs(named | {ALWAYS_READ}, derived, ALWAYS_READ in named)
