"""The shipped packs' `fix` commands: each names a family the agent reports and uses
that family's own tools and service names."""

from __future__ import annotations

import re

from rules.language.loader import builtin_packs_dir, load_rules
from rules.language.model import AllOf, AnyOf, Expr, Leaf, Not, OsFamily
from rules.language.operators import OPERATORS

# Each family's own tools: a Debian command never names dnf or the RHEL service names
# and the other way round (sshd, crond and httpd are RHEL's; ssh, cron, apache2 Debian's).
FOREIGN = {
    OsFamily.DEBIAN: re.compile(
        r"\b(dnf|yum|rpm|authselect|firewall-cmd|crond|httpd|chronyd)\b"
        r"|systemctl \w+ (--now )?sshd\b|/etc/sysconfig/"
    ),
    OsFamily.RHEL: re.compile(
        r"\b(apt-get|apt|dpkg|ufw|unattended-upgrades?|apache2)\b"
        r"|systemctl \w+ (--now )?(ssh|cron)\b(?![d.-])"
    ),
}


def test_shipped_fixes_use_their_family_tools() -> None:
    ruleset = load_rules([builtin_packs_dir()])
    fixed = [rule for rule in ruleset.rules if rule.fix]
    # Most rules have a meaningful command; the rest keep only their prose.
    assert len(fixed) >= 40, [rule.id for rule in fixed]
    for rule in fixed:
        for family, command in rule.fix.items():
            assert family in (OsFamily.DEBIAN, OsFamily.RHEL), rule.id
            assert not FOREIGN[family].search(command), (rule.id, family, command)
            # sshd_config edits are checked before the reload.
            if "sshd_config" in command:
                assert "sshd -t && systemctl reload " in command, rule.id


def _leaves(expr: Expr) -> list[Leaf]:
    if isinstance(expr, Leaf):
        return [expr]
    if isinstance(expr, AllOf | AnyOf):
        return [leaf for item in expr.items for leaf in _leaves(item)]
    if isinstance(expr, Not):
        return _leaves(expr.item)
    return _leaves(expr.assertion)


SETTING = re.compile(r"'([a-z0-9_.]+) = (-?[0-9]+)'")


def test_sysctl_fixes_write_the_settings_the_rule_reads_with_passing_values() -> None:
    """Each `key = value` a fix writes to sysctl.d is a key the rule checks, and the
    value written satisfies the rule's comparison (so the rule passes once applied)."""
    ruleset = load_rules([builtin_packs_dir()])
    checked = 0
    for rule in ruleset.rules:
        command = rule.fix.get(OsFamily.DEBIAN, "")
        if "/etc/sysctl.d/" not in command:
            continue
        assert command == rule.fix[OsFamily.RHEL], rule.id  # sysctl is the same on both
        assert command.endswith("&& sysctl --system"), rule.id
        leaves = {
            leaf.path: leaf for leaf in _leaves(rule.check) if leaf.path != "sysctl.unavailable"
        }
        written = SETTING.findall(command)
        assert written, rule.id
        for key, value in written:
            leaf = leaves.get(f"sysctl.{key}")
            assert leaf is not None, (rule.id, key)
            assert OPERATORS[leaf.op].apply(int(value), leaf.value), (rule.id, key, value)
            checked += 1
        # Every sysctl the rule requires is written (a fix that sets half is no fix).
        assert {f"sysctl.{key}" for key, _ in written} == set(leaves), rule.id
    assert checked >= 15
