"""The engine's semantics: statuses, per-item evidence, params, missing facts, mismatches."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from rules.engine import compiler, evaluate, evaluate_rule
from rules.language.bound import specialise
from rules.language.loader import builtin_packs_dir, load_pack_text, load_rules
from rules.language.model import Rule, RuleSet
from rules.language.operators import Operator
from rules.results import Status

from .conftest import DATA, facts_document, listener


@pytest.fixture(scope="module")
def cases() -> RuleSet:
    return load_rules([DATA / "good" / "engine-cases.yaml"])


@pytest.fixture(scope="module")
def builtin() -> RuleSet:
    return load_rules([builtin_packs_dir()])


def rule(ruleset: RuleSet, rule_id: str) -> Rule:
    found = ruleset.get(rule_id)
    assert found is not None
    return found


def by_id(results: list[Any]) -> dict[str, Any]:
    return {r.rule_id: r for r in results}


def test_exposed_telnet_fails_with_one_item_per_socket(
    builtin: RuleSet, debian_host: dict[str, Any]
) -> None:
    facts = facts_document(
        host=debian_host,
        listening=[
            listener(23, "0.0.0.0", process="inetd", pid=812),
            listener(23, "::", process="inetd", pid=812),
            listener(23, "127.0.0.1"),  # loopback: not exposed
            listener(23, "0.0.0.0", protocol="udp"),  # not telnet
            listener(22, "0.0.0.0", process="sshd"),
        ],
    )
    results = by_id(evaluate(builtin, facts))
    telnet = results["NET-TELNET-EXPOSED"]
    assert telnet.status is Status.FAIL
    assert [item.key for item in telnet.items] == ["tcp/0.0.0.0:23", "tcp/:::23"]
    first = telnet.items[0]
    assert first.evidence["port"] == 23
    assert first.evidence["process"] == "inetd"
    assert first.message.en == "Telnet is listening on 0.0.0.0:23 (process inetd, pid 812)"
    assert first.message.vi == "Telnet đang lắng nghe tại 0.0.0.0:23 (tiến trình inetd, pid 812)"
    assert results["NET-FTP-EXPOSED"].status is Status.PASS
    assert results["NET-FTP-EXPOSED"].items == ()


def test_param_override_changes_the_verdict(builtin: RuleSet, debian_host: dict[str, Any]) -> None:
    facts = facts_document(host=debian_host, listening=[listener(2323, "0.0.0.0")])
    telnet = rule(builtin, "NET-TELNET-EXPOSED")
    assert evaluate_rule(telnet, facts).status is Status.PASS
    overridden = evaluate_rule(telnet, facts, {"ports": [23, 2323]})
    assert overridden.status is Status.FAIL
    assert overridden.items[0].key == "tcp/0.0.0.0:2323"


def test_missing_domain_is_error_never_pass(builtin: RuleSet, debian_host: dict[str, Any]) -> None:
    facts = facts_document(host=debian_host)  # no `listening`
    exposure = RuleSet(tuple(p for p in builtin.packs if p.id == "network-exposure"))
    for result in evaluate(exposure, facts):
        assert result.status is Status.ERROR
        assert result.errors == (
            "fact path 'listening' is missing (the facts document has no 'listening' domain)",
        )


def test_missing_domain_names_the_failed_collector(builtin: RuleSet) -> None:
    facts = facts_document(
        errors=[{"domain": "listening", "kind": "permission", "reason": "/proc/net unreadable"}]
    )
    result = evaluate_rule(rule(builtin, "NET-RDP-EXPOSED"), facts)
    assert result.status is Status.ERROR
    assert "collector 'listening' permission: /proc/net unreadable" in result.errors[0]


def test_type_mismatch_in_one_item_is_error_and_keeps_other_failures(builtin: RuleSet) -> None:
    broken = listener(21, "0.0.0.0")
    broken["port"] = "21"  # a string where a number belongs
    facts = facts_document(listening=[broken, listener(21, "10.0.0.5")])
    result = evaluate_rule(rule(builtin, "NET-FTP-EXPOSED"), facts)
    assert result.status is Status.ERROR
    assert [item.key for item in result.items] == ["tcp/10.0.0.5:21"]
    assert "port: operator 'in' cannot compare string '21'" in result.errors[0]


def test_applies_to_false_is_not_applicable(cases: RuleSet, debian_host: dict[str, Any]) -> None:
    rhel = {**debian_host, "os": {**debian_host["os"], "family": "rhel"}}
    result = evaluate_rule(rule(cases, "CASE-DEBIAN-ONLY"), facts_document(host=rhel))
    assert result.status is Status.NOT_APPLICABLE


def test_leaf_rule_evidence_and_param_in_message(
    cases: RuleSet, debian_host: dict[str, Any]
) -> None:
    old = {**debian_host, "kernel": {"release": "5.10.0-30-amd64"}}
    result = evaluate_rule(rule(cases, "CASE-DEBIAN-ONLY"), facts_document(host=old))
    assert result.status is Status.FAIL
    (item,) = result.items
    assert item.key == ""
    assert item.evidence == {"host.kernel.release": "5.10.0-30-amd64"}
    assert item.message.en == "Kernel 5.10.0-30-amd64 is older than 6.1"
    current = evaluate_rule(rule(cases, "CASE-DEBIAN-ONLY"), facts_document(host=debian_host))
    assert current.status is Status.PASS


def test_for_all_with_where_and_root_reference(cases: RuleSet, debian_host: dict[str, Any]) -> None:
    facts = facts_document(
        host=debian_host,
        listening=[
            listener(8080, "127.0.0.1"),
            listener(443, "0.0.0.0"),
            listener(9100, "10.1.1.1"),
        ],
    )
    result = evaluate_rule(rule(cases, "CASE-NO-EXPOSED-HIGH-PORTS"), facts)
    assert result.status is Status.FAIL
    assert [item.key for item in result.items] == ["tcp/10.1.1.1:9100"]
    assert result.items[0].message.en == "High port 9100 open on 10.1.1.1 of web01"


def test_for_any(cases: RuleSet) -> None:
    ssh = rule(cases, "CASE-SSH-LISTENING")
    assert evaluate_rule(ssh, facts_document(listening=[listener(22)])).status is Status.PASS
    missing = evaluate_rule(ssh, facts_document(listening=[listener(80)]))
    assert missing.status is Status.FAIL
    assert missing.items[0].evidence == {"in": "listening", "count": 1}


def test_duplicate_item_keys_stay_unique(builtin: RuleSet) -> None:
    facts = facts_document(
        listening=[listener(445, "0.0.0.0", pid=1), listener(445, "0.0.0.0", pid=2)]
    )
    result = evaluate_rule(rule(builtin, "NET-SMB-EXPOSED"), facts)
    assert [item.key for item in result.items] == ["tcp/0.0.0.0:445", "tcp/0.0.0.0:445#2"]


def test_quantifier_over_non_list_is_error(builtin: RuleSet) -> None:
    result = evaluate_rule(
        rule(builtin, "NET-SMB-EXPOSED"), facts_document(listening={"port": 445})
    )
    assert result.status is Status.ERROR
    assert "'listening' is a object, a quantifier needs a list" in result.errors[0]


NESTED = """
pack: {id: nested, version: 1.0.0, title: {vi: Lồng, en: Nested}}
rules:
  - id: NESTED-CIPHERS
    title: {vi: Thử, en: Test}
    severity: medium
    rationale: {vi: Thử, en: Test}
    remediation: {vi: Thử, en: Test}
    check:
      all:
        - {path: ssh.permit_root_login, op: eq, value: no}
        - not:
            for_any:
              in: ssh.ciphers
              assert: {path: ., op: matches, value: "-cbc$"}
    message: {vi: "SSH yếu trên {$.host.hostname}", en: "Weak SSH on {host.hostname}"}
"""


@pytest.mark.parametrize(
    ("ssh", "status"),
    [
        ({"permit_root_login": "no", "ciphers": ["aes256-gcm@openssh.com"]}, Status.PASS),
        (
            {"permit_root_login": "no", "ciphers": ["aes256-gcm@openssh.com", "aes128-cbc"]},
            Status.FAIL,
        ),
        ({"permit_root_login": "yes", "ciphers": []}, Status.FAIL),
        ({"permit_root_login": False, "ciphers": []}, Status.ERROR),
    ],
)
def test_nested_quantifier_over_scalars(
    ssh: dict[str, Any], status: Status, debian_host: dict[str, Any]
) -> None:
    pack, problems = load_pack_text(NESTED, "nested.yaml")
    assert problems == []
    assert pack is not None
    result = evaluate_rule(pack.rules[0], facts_document(host=debian_host, ssh=ssh))
    assert result.status is status
    if status is Status.FAIL:
        assert result.items[0].message.en == "Weak SSH on web01"
        assert result.items[0].evidence["ssh.permit_root_login"] == ssh["permit_root_login"]


def test_results_serialise_to_the_result_contract(builtin: RuleSet) -> None:
    facts = facts_document(listening=[listener(3389, "192.0.2.10")])
    result = evaluate_rule(rule(builtin, "NET-RDP-EXPOSED"), facts).to_dict()
    assert result["status"] == "fail"
    assert result["severity"] == "high"
    assert set(result) == {"rule_id", "severity", "status", "title", "items", "errors"}
    assert result["items"][0]["key"] == "tcp/192.0.2.10:3389"
    assert set(result["items"][0]["message"]) == {"vi", "en"}


def test_null_fact_is_an_error_that_says_unknown(builtin: RuleSet) -> None:
    text = """
pack: {id: nulls, version: 1.0.0, title: {vi: Rỗng, en: Nulls}}
rules:
  - id: NULL-PROCESS
    title: {vi: Thử, en: Test}
    severity: low
    rationale: {vi: Thử, en: Test}
    remediation: {vi: Thử, en: Test}
    check:
      for_none:
        in: listening
        key: "{port}"
        assert: {path: process, op: eq, value: telnetd}
    message: {vi: Thử, en: Test}
  - id: NULL-GUARDED
    title: {vi: Thử, en: Test}
    severity: low
    rationale: {vi: Thử, en: Test}
    remediation: {vi: Thử, en: Test}
    check:
      for_none:
        in: listening
        key: "{port}"
        assert: {all: [{path: process, op: exists}, {path: process, op: eq, value: telnetd}]}
    message: {vi: Thử, en: Test}
"""
    pack, problems = load_pack_text(text, "nulls.yaml")
    assert problems == [] and pack is not None
    facts = facts_document(listening=[listener(23, process=None)])
    facts["listening"][0]["process"] = None
    unguarded, guarded = (evaluate_rule(rule, facts) for rule in pack.rules)
    assert unguarded.status is Status.ERROR
    assert "cannot compare null (unknown) with string 'telnetd'" in unguarded.errors[0]
    assert guarded.status is Status.PASS
    # the agent said why owners are unknown: the error carries that reason
    facts["errors"] = [{"domain": "listening", "kind": "permission", "reason": "run as root"}]
    explained = evaluate_rule(pack.rules[0], facts)
    assert explained.errors[0].endswith("(collector 'listening' permission: run as root)")


def test_hostile_facts_become_error_results_not_crashes(builtin: RuleSet) -> None:
    text = (DATA / "good" / "engine-cases.yaml").read_text(encoding="utf-8")
    pack, _ = load_pack_text(text, "cases.yaml")
    assert pack is not None
    facts = facts_document(
        host={"os": {"family": "debian"}, "kernel": {"release": "1²" + "9" * 5000}}
    )
    facts["errors"] = {"not": "a list"}
    results = [evaluate_rule(rule, facts) for rule in pack.rules]
    assert results[0].status is Status.FAIL
    assert all(r.status in (Status.FAIL, Status.ERROR, Status.PASS) for r in results)


def test_param_reference_must_be_a_name() -> None:
    text = (DATA / "good" / "engine-cases.yaml").read_text(encoding="utf-8")
    _, problems = load_pack_text(
        text.replace("{param: min_kernel}", "{param: [min_kernel]}"), "p.yaml"
    )
    assert [p.message for p in problems] == [
        "unknown parameter ['min_kernel'] (declare it under the rule's params)"
    ]


def test_an_operator_bug_is_the_rule_s_error_and_is_logged_with_the_rule_id(
    debian_host: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """An exception that is not an EvaluationError is an engine bug: the rule is in
    error (never a pass) and the bug is logged with the rule id and its traceback."""

    def broken(_fact: Any) -> bool:
        raise ZeroDivisionError("operator bug")

    # Operators are bound to their values when a rule is compiled (`specialise`): that
    # is the engine's seam. Replace `eq` there with a broken one, and load the packs
    # anew so that no rule compiled before the patch (the engine caches them) is used.
    monkeypatch.setattr(
        compiler,
        "specialise",
        lambda op, value: broken if op is Operator.EQ else specialise(op, value),
    )
    builtin = load_rules([builtin_packs_dir()])
    with caplog.at_level(logging.ERROR, logger="canhgac.rules.engine"):
        facts = facts_document(host=debian_host, listening=[listener(23), listener(3389)])
        results = evaluate(builtin, facts)
    broken_rules = [r for r in results if any("operator bug" in e for e in r.errors)]
    assert broken_rules, "no rule uses eq: the test no longer tests anything"
    assert all(r.status is Status.ERROR for r in broken_rules)
    logged = {record.getMessage() for record in caplog.records}
    for result in broken_rules:
        assert f"rule {result.rule_id}: internal error while evaluating" in logged
    assert all(record.exc_info is not None for record in caplog.records)
