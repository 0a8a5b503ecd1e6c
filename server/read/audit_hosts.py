"""The per-host part of the audit: patch state, certificates expiring soon, exposed
services, from each host's facts as of the cut-off (its newest evaluated report).

A domain the agent could not read (an `errors` entry, or absent) is listed in
`unread` with its reason and its values are null, never zero: unknown is not a pass.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from rules.derived import parse_timestamp
from rules.language.model import OsFamily, Severity, os_family
from rules.policy.scoring import score_results
from rules.results import RuleResult
from server.read.audit_views import CertificateRow, HostRow, ServiceRow, Unread, UnreadKind
from server.storage.fact_load import load_envelopes
from server.storage.fact_store import load_domains
from server.storage.models import Report

CERTIFICATE_HORIZON_DAYS = 90
DOMAINS_SHOWN = ("updates", "certificates", "listening")
_CHUNK = 500  # ids per IN (...) list: far below every database's parameter limit


def _unread(facts: Mapping[str, Any], domains: Iterable[str]) -> list[Unread]:
    errors = {str(e.get("domain")): e for e in facts.get("errors") or [] if isinstance(e, Mapping)}
    answer = []
    for domain in domains:
        if domain in errors:
            error = errors[domain]
            try:
                kind = UnreadKind(str(error.get("kind")))
            except ValueError:
                kind = UnreadKind.FAILED  # the schema allows no other kind; be safe
            answer.append(Unread(domain=domain, kind=kind, reason=str(error.get("reason", ""))))
        elif domain not in facts:
            answer.append(Unread(domain=domain, kind=UnreadKind.ABSENT, reason=""))
    return answer


def _certificates(items: Any, cutoff: datetime) -> list[CertificateRow]:
    rows = []
    for item in items if isinstance(items, list) else []:
        not_after = parse_timestamp(item.get("not_after")) if isinstance(item, dict) else None
        if not_after is None:
            continue
        days = (not_after - cutoff).days
        if days <= CERTIFICATE_HORIZON_DAYS:
            rows.append(
                CertificateRow(
                    location=str(item.get("location", "")),
                    subject=str(item.get("subject") or ""),
                    not_after=not_after,
                    days_left=days,
                )
            )
    return sorted(rows, key=lambda r: (r.not_after, r.location))


def _exposed(items: Any) -> list[ServiceRow]:
    rows = [
        ServiceRow(
            protocol=str(item.get("protocol", "")),
            address=str(item.get("address", "")),
            port=int(item.get("port", 0)),
            process=item.get("process"),
        )
        for item in (items if isinstance(items, list) else [])
        if isinstance(item, dict) and item.get("exposure") in ("all", "specific")
    ]
    return sorted(rows, key=lambda r: (r.port, r.protocol, r.address))


def load_host_facts(
    session: Session, report_pks: Iterable[int]
) -> dict[int, tuple[datetime, dict[str, Any]]]:
    """report pk -> (collected_at, the facts the audit reads), a few queries per
    500 hosts instead of two per host. Only the domains the audit shows are read
    (through the fact store's readers); the envelope (with `errors`) always is."""
    pks = sorted(set(report_pks))
    answer: dict[int, tuple[datetime, dict[str, Any]]] = {}
    for start in range(0, len(pks), _CHUNK):
        chunk = pks[start : start + _CHUNK]
        envelopes = load_envelopes(session, chunk)
        rows = session.execute(select(Report.id, Report.collected_at).where(Report.id.in_(chunk)))
        for pk, collected_at in rows:
            answer[pk] = (collected_at, envelopes.get(pk, {}))
        for pk, domains in load_domains(session, chunk, DOMAINS_SHOWN).items():
            answer[pk][1].update(domains)
    return answer


def load_families(session: Session, hosts: Iterable[tuple[int, int]]) -> dict[int, OsFamily | None]:
    """host id -> its OS family (`host.os.family`; None when unknown or other) from
    the report given for it (host id, report pk): the `host` domain only, one read
    per 500 hosts."""
    pairs = sorted(set(hosts))
    answer: dict[int, OsFamily | None] = {}
    for start in range(0, len(pairs), _CHUNK):
        chunk = pairs[start : start + _CHUNK]
        domains = load_domains(session, [pk for _host, pk in chunk], ("host",))
        for host_id, pk in chunk:
            answer[host_id] = os_family(domains.get(pk, {}).get("host"))
    return answer


def host_row(
    *,
    label: str,
    agent_id: str,
    collected_at: datetime,
    facts: Mapping[str, Any],
    results: Iterable[RuleResult],
    weights: Mapping[Severity, float],
    cutoff: datetime,
    stale_after: timedelta,
    security_level: int | None = None,
) -> HostRow:
    unread = _unread(facts, DOMAINS_SHOWN)
    updates = facts.get("updates") if all(u.domain != "updates" for u in unread) else None
    security: list[datetime] = []
    if isinstance(updates, dict):
        for item in updates.get("pending") or []:
            seen = parse_timestamp(item.get("first_seen_at")) if item.get("security") else None
            if seen is not None:
                security.append(seen)
    return HostRow(
        host=label,
        agent_id=agent_id,
        collected_at=collected_at,
        stale=collected_at < cutoff - stale_after,
        score=score_results(results, weights).ratio,
        security_level=security_level,
        security_updates=updates.get("security_count") if isinstance(updates, dict) else None,
        oldest_security_update=min(security) if security else None,
        reboot_required=updates.get("reboot_required") if isinstance(updates, dict) else None,
        certificates=_certificates(facts.get("certificates"), cutoff),
        exposed_services=_exposed(facts.get("listening")),
        unread=unread,
    )
