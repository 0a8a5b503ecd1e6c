"""Facts stored by domain: each domain's content is stored once per host while it does
not change, so storage grows with change, not with reports.

A report is split into its envelope (every key that is not a domain: schema, ids,
seq, times, agent version, errors) and its domains. Each domain is serialised to
canonical JSON (sorted keys, no spaces) and hashed (SHA-256); the report row keeps
the envelope and a map domain -> blob id. The host row remembers its current blob
per domain, so an unchanged domain costs one dictionary lookup and nothing stored.
Derived ages (rules.derived: days_left, pending_days, uptime_seconds, ...) are left
out before hashing and storing, since they change with every report while nothing
on the host did; `load_facts` recomputes them from the stored timestamps and the
report's `collected_at`, which gives back exactly what the agent sent and the rules
saw.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from rules.derived import add_derived, parse_timestamp, strip_domain
from rules.facts import Domain
from server.storage.models import FactsBlob, Host, Report

DOMAINS = frozenset(d.value for d in Domain)
# Envelope keys that change with every report and say nothing about the host.
_VOLATILE = frozenset({"report_id", "seq", "seq_epoch", "collected_at"})


def canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


@dataclass(frozen=True)
class SplitFacts:
    envelope: str  # canonical JSON of the non-domain keys
    # domain -> (canonical JSON without derived fields, its sha256); the JSON is None
    # for a domain reused as it was sent last time (`text_of` computes it if needed)
    domains: dict[str, tuple[str | None, str]]
    digest: str  # sha256 over everything a rule can read except the volatile keys
    sent: Mapping[str, str] = field(default_factory=dict)  # domain -> digest as sent
    data: Mapping[str, Any] = field(default_factory=dict)  # the document, with ages

    def text_of(self, domain: str) -> str:
        text = self.domains[domain][0]
        return text if text is not None else canonical(strip_domain(domain, self.data[domain]))

    def new_bytes(self) -> int:
        """What storing this report's envelope and canonicalised domains may add."""
        texts = (t for t, _ in self.domains.values() if t is not None)
        return len(self.envelope.encode()) + sum(len(t.encode()) for t in texts)


def split_facts(
    data: Mapping[str, Any],
    known: Mapping[str, Any] | None = None,
    sent: Mapping[str, str] | None = None,
) -> SplitFacts:
    """Split `data` (with its derived ages: they are left out here) by domain.

    `known` is the host's `domain_blobs` and `sent` the digests of the report's
    domains as received: a domain sent exactly as the host's current one keeps that
    one's hash without being stripped or serialised again."""
    envelope = {k: v for k, v in data.items() if k not in DOMAINS}
    domains: dict[str, tuple[str | None, str]] = {}
    sent = sent or {}
    for key, value in data.items():
        if key not in DOMAINS:
            continue
        entry = (known or {}).get(key)
        as_sent = sent.get(key)
        if as_sent is not None and isinstance(entry, list) and entry[2:3] == [as_sent]:
            domains[key] = (None, str(entry[1]))
            continue
        text = canonical(strip_domain(key, value))
        domains[key] = (text, hashlib.sha256(text.encode()).hexdigest())
    stable = canonical({k: v for k, v in envelope.items() if k not in _VOLATILE})
    digest = hashlib.sha256(stable.encode())
    for key in sorted(domains):
        digest.update(f"\0{key}\0{domains[key][1]}".encode())
    return SplitFacts(canonical(envelope), domains, digest.hexdigest(), dict(sent), data)


def unchanged_domains(known: Mapping[str, Any] | None, sent: Mapping[str, str]) -> frozenset[str]:
    """The domains sent exactly as the host's current ones (`known`: its domain_blobs)."""
    return frozenset(
        domain
        for domain, entry in (known or {}).items()
        if isinstance(entry, list) and domain in sent and entry[2:3] == [sent[domain]]
    )


def store_domains(
    session: Session, host: Host, split: SplitFacts, *, current: bool, now: datetime
) -> dict[str, int]:
    """Blob ids for the report's domains, inserting only contents not stored yet.

    `current`: the report becomes the host's state; its blobs become current and the
    blobs they replace are marked superseded (retention deletes them later).
    """
    known: dict[str, Any] = dict(host.domain_blobs or {})
    ids: dict[str, int] = {}
    missing: dict[str, str] = {}
    for domain, (_, digest) in split.domains.items():
        entry = known.get(domain)
        if entry is not None and entry[1] == digest:
            ids[domain] = int(entry[0])
        else:
            missing[domain] = digest
    if missing:
        found = session.execute(
            select(FactsBlob.id, FactsBlob.domain, FactsBlob.content_hash).where(
                FactsBlob.host_id == host.id,
                FactsBlob.content_hash.in_(list(missing.values())),
            )
        ).all()
        existing = {(domain, digest): blob_id for blob_id, domain, digest in found}
        for domain, digest in missing.items():
            blob_id = existing.get((domain, digest))
            if blob_id is None:
                blob = FactsBlob(
                    host_id=host.id,
                    domain=domain,
                    content_hash=digest,
                    content=split.text_of(domain),
                    first_seen_at=now,
                    superseded_at=None if current else now,
                )
                session.add(blob)
                session.flush()
                blob_id = blob.id
            elif current:
                _set_superseded(session, [blob_id], None)
            else:
                # A late report still refers to it: keep it as long as the report.
                session.execute(
                    update(FactsBlob)
                    .where(FactsBlob.id == blob_id, FactsBlob.superseded_at < now)
                    .values(superseded_at=now)
                )
            ids[domain] = blob_id
    if current:
        replaced = [
            int(entry[0])
            for domain, entry in known.items()
            if domain not in ids or int(entry[0]) != ids[domain]
        ]
        _set_superseded(session, replaced, now)
        # The third element, the digest as sent, lets the next report skip checking
        # and serialising this domain again when it sends the same bytes. It is kept
        # while the content is: a domain whose bytes change at every report only by
        # derived ages (host: uptime) would otherwise rewrite this row every time.
        host.domain_blobs = {d: _entry(known.get(d), ids[d], split, d) for d in sorted(ids)}
    return ids


def _entry(known: Any, blob_id: int, split: SplitFacts, domain: str) -> list[Any]:
    digest = split.domains[domain][1]
    if isinstance(known, list) and known[:2] == [blob_id, digest] and len(known) > 2:
        return known
    return [blob_id, digest, *([split.sent[domain]] if domain in split.sent else [])]


def _set_superseded(session: Session, blob_ids: list[int], when: datetime | None) -> None:
    if blob_ids:
        session.execute(
            update(FactsBlob)
            .where(FactsBlob.id.in_(blob_ids))
            .values(superseded_at=when)
            .execution_options(synchronize_session=False)
        )


def load_facts(session: Session, report: Report) -> dict[str, Any]:
    """The facts document of a stored report, as it was evaluated.

    Domains are stored without their derived ages (rules.derived); they are put back
    as of the report's `collected_at`, which gives the agent's own values.
    """
    data: dict[str, Any] = json.loads(report.facts)
    if report.domains is None:  # stored before revision 0002: the whole document
        return data
    ids = {int(blob_id): domain for domain, blob_id in report.domains.items()}
    if ids:
        for blob_id, content in session.execute(
            select(FactsBlob.id, FactsBlob.content).where(FactsBlob.id.in_(list(ids)))
        ):
            data[ids[blob_id]] = json.loads(content)
    collected_at = parse_timestamp(data.get("collected_at"))
    return add_derived(data, collected_at) if collected_at is not None else data


_LOAD_BATCH = 500  # report ids per IN list: well under every database's parameter limit


def load_domains(
    session: Session, report_pks: Sequence[int], domains: Collection[str]
) -> dict[int, dict[str, Any]]:
    """Some domains of some reports, parsed, as stored (without derived ages): report
    pk -> domain -> value. A domain the report did not carry is absent from its map;
    a report that does not exist is absent. Two queries per 500 reports."""
    wanted = frozenset(domains)
    found: dict[int, dict[str, Any]] = {}
    for start in range(0, len(report_pks), _LOAD_BATCH):
        batch = list(report_pks[start : start + _LOAD_BATCH])
        blob_of: dict[int, list[tuple[int, str]]] = {}
        rows = select(Report.id, Report.domains, Report.facts).where(Report.id.in_(batch))
        for report_pk, stored, facts in session.execute(rows):
            found[report_pk] = {}
            if stored is None:  # stored before revision 0002: the whole document
                document = json.loads(facts)
                found[report_pk] = {d: document[d] for d in wanted if d in document}
                continue
            for domain in wanted & stored.keys():
                blob_of.setdefault(int(stored[domain]), []).append((report_pk, domain))
        if blob_of:
            blobs = select(FactsBlob.id, FactsBlob.content).where(FactsBlob.id.in_(list(blob_of)))
            for blob_id, content in session.execute(blobs):
                value = json.loads(content)
                for report_pk, domain in blob_of[blob_id]:
                    found[report_pk][domain] = value
    return found
