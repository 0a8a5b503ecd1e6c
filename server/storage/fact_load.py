"""Reading stored facts back: a report's document (`load_facts`), some domains of
many reports (`load_domains`), their envelopes (`load_envelopes`), which blob holds a
domain (`domain_blob_ids`), blobs by id (`load_blobs`, parted domains joined).
Every reader of `reports.facts`, `reports.domains` and `facts_blobs` goes through
these, so how they are stored can change without the readers changing.

What `server.storage.fact_store` left out is put back here: derived ages (from the
stored timestamps, as of the report's `collected_at`), the envelope keys the report
row tells (`implied_envelope`), a parted domain's list (`fact_parts`). Rows of every
revision load: the whole document (before 0002), the whole envelope (before 0007),
whole domain blobs (before 0007), the envelope and domain map in the row itself
(before 0008; since then in the blob `reports.map_blob_id`).
"""

from __future__ import annotations

import json
from collections.abc import Collection, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from rules.derived import add_derived, parse_timestamp
from rules.facts import ENVELOPE_KEYS, SCHEMA_ID, Domain
from server.storage.fact_parts import join_parts
from server.storage.models import FactsBlob, Host, Report

DOMAINS = frozenset(d.value for d in Domain)
IMPLIED_KEYS = frozenset((*ENVELOPE_KEYS, "errors"))
LOAD_BATCH = 500  # ids per IN list: well under every database's parameter limit


def load_blobs(session: Session, blob_ids: Collection[int]) -> dict[int, Any]:
    """Stored domain values by blob id, parsed, a parted domain's parts joined back
    (`fact_parts`): what every reader of `facts_blobs` goes through. A few queries
    per 500 blobs; a missing id is absent from the answer."""
    wanted = sorted(set(blob_ids))
    values: dict[int, Any] = {}
    heads: list[tuple[int, str, Any, list[int]]] = []
    for start in range(0, len(wanted), LOAD_BATCH):
        rows = select(FactsBlob.id, FactsBlob.domain, FactsBlob.content, FactsBlob.parts).where(
            FactsBlob.id.in_(wanted[start : start + LOAD_BATCH])
        )
        for blob_id, domain, content, parts in session.execute(rows):
            if parts is None:
                values[blob_id] = json.loads(content)
            else:
                heads.append((blob_id, domain, json.loads(content), [int(p) for p in parts]))
    if heads:
        part_ids = sorted({part for *_, parts in heads for part in parts})
        lists: dict[int, Any] = {}
        for start in range(0, len(part_ids), LOAD_BATCH):
            rows = select(FactsBlob.id, FactsBlob.content).where(
                FactsBlob.id.in_(part_ids[start : start + LOAD_BATCH])
            )
            lists.update(
                (part_id, json.loads(content)) for part_id, content in session.execute(rows)
            )
        for blob_id, domain, head, parts in heads:
            # A part cannot be missing while its head is kept (retention supersedes a
            # part no earlier than its heads): a KeyError here is a broken invariant.
            values[blob_id] = join_parts(domain, head, [lists[part] for part in parts])
    return values


def _stored_maps(
    session: Session, rows: Sequence[tuple[int, Any, Any, int | None]]
) -> dict[int, tuple[dict[str, Any], dict[str, Any] | None]]:
    """report pk -> (stored envelope, domain map or None before 0002) for rows of
    (pk, facts, domains, map_blob_id): the map blob's when the row has one (0008)."""
    maps = load_blobs(session, {m for *_, m in rows if m is not None})
    answer: dict[int, tuple[dict[str, Any], dict[str, Any] | None]] = {}
    for pk, facts, domains, map_blob_id in rows:
        if map_blob_id is not None:
            # Retention keeps a map while a report refers to it: a KeyError here is a
            # broken invariant, not a report to load without its envelope.
            stored = maps[int(map_blob_id)]
            answer[pk] = (stored["envelope"], stored["domains"])
        else:
            answer[pk] = (json.loads(facts), domains)
    return answer


def implied_envelope(
    report_id: str, agent_id: str, seq: int, collected_at: datetime, agent_version: str
) -> dict[str, Any]:
    """The envelope keys a report row already tells (its columns, its host), as the
    agent sends them: an envelope key equal to its value here is not stored."""
    moment = collected_at.astimezone(UTC)
    fraction = f".{moment.microsecond:06d}" if moment.microsecond else ""
    return {
        "schema": SCHEMA_ID,
        "report_id": report_id,
        "agent_id": agent_id,
        "seq": seq,
        "collected_at": moment.strftime("%Y-%m-%dT%H:%M:%S") + fraction + "Z",
        "agent_version": agent_version,
        "errors": [],
    }


def _restored(data: dict[str, Any], row: Any, agent_id: Any) -> dict[str, Any]:
    """A stored envelope with the keys the row tells put back (`row`: a Report or a
    row with its report_id, seq, collected_at and agent_version)."""
    if data.keys() >= IMPLIED_KEYS:
        return data  # the whole envelope (before 0007)
    implied = implied_envelope(
        row.report_id, str(agent_id), row.seq, row.collected_at, row.agent_version
    )
    return {**{k: v for k, v in implied.items() if k not in data}, **data}


def _envelope(session: Session, report: Report) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """The report's envelope, restored, and its domain map (None before 0002)."""
    key = (report.id, report.facts, report.domains, report.map_blob_id)
    data, domains = _stored_maps(session, [key])[report.id]
    if domains is None or data.keys() >= IMPLIED_KEYS:
        return data, domains  # the whole document (before 0002) or the whole envelope
    agent_id = session.scalar(select(Host.agent_id).where(Host.id == report.host_id))
    return _restored(data, report, agent_id), domains


def load_envelopes(session: Session, report_pks: Sequence[int]) -> dict[int, dict[str, Any]]:
    """Each report's envelope (every key of its document but the domains: ids, times,
    `errors`...) as the agent sent it; a report that does not exist is absent. One
    query per 500 reports. Readers use this, never `reports.facts` itself."""
    found: dict[int, dict[str, Any]] = {}
    for start in range(0, len(report_pks), LOAD_BATCH):
        rows = (
            select(
                Report.id,
                Report.facts,
                Report.domains,
                Report.map_blob_id,
                Report.report_id,
                Report.seq,
                Report.collected_at,
                Report.agent_version,
                Host.agent_id,
            )
            .join(Host, Host.id == Report.host_id)
            .where(Report.id.in_(list(report_pks[start : start + LOAD_BATCH])))
        )
        batch = session.execute(rows).all()
        stored = _stored_maps(
            session, [(row.id, row.facts, row.domains, row.map_blob_id) for row in batch]
        )
        for row in batch:
            data, domains = stored[row.id]
            if domains is None:  # before revision 0002: the whole document
                found[row.id] = {k: v for k, v in data.items() if k not in DOMAINS}
            else:
                found[row.id] = _restored(data, row, row.agent_id)
    return found


def domain_blob_ids(session: Session, report_pks: Sequence[int], domain: str) -> dict[int, int]:
    """report pk -> the blob holding its `domain`: the same id names the same content
    within a host (hosts of one content never share a blob). Reports without the
    domain, or stored before revision 0002, are absent. One query per 500 reports."""
    found: dict[int, int] = {}
    for start in range(0, len(report_pks), LOAD_BATCH):
        rows = select(Report.id, Report.facts, Report.domains, Report.map_blob_id).where(
            Report.id.in_(list(report_pks[start : start + LOAD_BATCH]))
        )
        stored = _stored_maps(session, list(session.execute(rows)))
        for report_pk, (_, domains) in stored.items():
            if isinstance(domains, dict) and domains.get(domain) is not None:
                found[report_pk] = int(domains[domain])
    return found


def load_facts(session: Session, report: Report) -> dict[str, Any]:
    """The facts document of a stored report, as it was evaluated.

    Domains are stored without their derived ages (rules.derived); they are put back
    as of the report's `collected_at`, which gives the agent's own values. The
    envelope's keys the row tells were not stored (`fact_store.report_map`).
    """
    data, domains = _envelope(session, report)
    if domains is None:  # stored before revision 0002: the whole document
        return data
    ids = {int(blob_id): domain for domain, blob_id in domains.items()}
    for blob_id, value in load_blobs(session, ids).items():
        data[ids[blob_id]] = value
    collected_at = parse_timestamp(data.get("collected_at"))
    return add_derived(data, collected_at) if collected_at is not None else data


def load_domains(
    session: Session, report_pks: Sequence[int], domains: Collection[str]
) -> dict[int, dict[str, Any]]:
    """Some domains of some reports, parsed, as stored (without derived ages): report
    pk -> domain -> value. A domain the report did not carry is absent from its map;
    a report that does not exist is absent. A few queries per 500 reports."""
    wanted = frozenset(domains)
    found: dict[int, dict[str, Any]] = {}
    for start in range(0, len(report_pks), LOAD_BATCH):
        batch = list(report_pks[start : start + LOAD_BATCH])
        blob_of: dict[int, list[tuple[int, str]]] = {}
        rows = select(Report.id, Report.facts, Report.domains, Report.map_blob_id).where(
            Report.id.in_(batch)
        )
        maps = _stored_maps(session, list(session.execute(rows)))
        for report_pk, (document, stored) in maps.items():
            found[report_pk] = {}
            if stored is None:  # stored before revision 0002: the whole document
                found[report_pk] = {d: document[d] for d in wanted if d in document}
                continue
            for domain in wanted & stored.keys():
                blob_of.setdefault(int(stored[domain]), []).append((report_pk, domain))
        for blob_id, value in load_blobs(session, blob_of).items():
            for report_pk, domain in blob_of[blob_id]:
                found[report_pk][domain] = value
    return found
