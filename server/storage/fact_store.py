"""Facts stored by domain: each domain's content is stored once per host while it does
not change, so storage grows with change, not with reports.

A report is split into its envelope (every key that is not a domain: schema, ids,
seq, times, agent version, errors) and its domains. Each domain is serialised to
canonical JSON (sorted keys, no spaces) and hashed (SHA-256); the report row keeps
the envelope and a map domain -> blob id. The host row remembers its current blob
per domain, so an unchanged domain costs one dictionary lookup and nothing stored.
Derived ages (rules.derived: days_left, pending_days, uptime_seconds, ...) are left
out before hashing and storing, since they change with every report while nothing
on the host did; `fact_load.load_facts` recomputes them from the stored timestamps
and the report's `collected_at`, which gives back exactly what the agent sent and the
rules saw. Large domains (`fact_parts.PARTED`: packages) are stored in parts since
revision 0007, so one changed package stores one part; `fact_load.load_blobs` joins
them back and is the one way to read a blob's value. The envelope is stored without
the keys the report row tells (`report_map`). Since revision 0008 the envelope
and the domain map are themselves one blob (domain `MAP`, `store_map`), shared by the
host's reports while both are unchanged: the report row holds only its id.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select
from sqlalchemy.orm import Session

from rules.derived import strip_domain
from server.errors import DatabaseError
from server.storage.fact_load import (
    DOMAINS,
    LOAD_BATCH,
    implied_envelope,
    load_blobs,
    load_domains,
    load_facts,
)
from server.storage.fact_parts import (
    PARTED,
    Parted,
    canonical,
    part_domain,
    split_parts,
)
from server.storage.models import FactsBlob, Host

__all__ = [  # the readers live in fact_load; importable from here as before
    "DOMAINS",
    "SplitFacts",
    "canonical",
    "load_blobs",
    "load_domains",
    "load_facts",
    "report_map",
    "split_facts",
    "store_domains",
    "store_map",
    "unchanged_domains",
]

# Envelope keys that change with every report and say nothing about the host.
_VOLATILE = frozenset({"report_id", "seq", "seq_epoch", "collected_at"})
# The `facts_blobs.domain` of a report's envelope and domain map (revision 0008), and
# its key in `hosts.domain_blobs` (never a facts domain: those are identifiers).
MAP = "@report"
# The table: the ingest path's statements are Core, run on the session's connection
# (no entities built, no autoflush; the ORM's unit of work only for parts, see below).
_BLOBS = FactsBlob.metadata.tables[FactsBlob.__tablename__]


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

    `current`: the report becomes the host's state; its blobs (and their parts, see
    `fact_parts`) become current and the ones they replace are marked superseded
    (retention deletes them later).
    """
    known: dict[str, Any] = {k: v for k, v in (host.domain_blobs or {}).items() if k != MAP}
    ids: dict[str, int] = {}
    missing: dict[str, str] = {}
    for domain, (_, digest) in split.domains.items():
        entry = known.get(domain)
        if entry is not None and entry[1] == digest:
            ids[domain] = int(entry[0])
        else:
            missing[domain] = digest
    added: list[int] = []  # blobs (and parts) the report refers to that the host's
    reused: list[int] = []  # current ones did not: inserted now, or stored before
    if missing:
        found = (
            session.connection()
            .execute(
                select(_BLOBS.c.id, _BLOBS.c.domain, _BLOBS.c.content_hash, _BLOBS.c.parts).where(
                    _BLOBS.c.host_id == host.id,
                    _BLOBS.c.content_hash.in_(list(missing.values())),
                )
            )
            .all()
        )
        existing = {(row.domain, row.content_hash): row for row in found}
        for domain, digest in missing.items():
            row = existing.get((domain, digest))
            if row is None:
                ids[domain] = _insert(
                    session,
                    host,
                    split,
                    domain,
                    digest,
                    now=None if current else now,
                    first_seen=now,
                    added=added,
                    reused=reused,
                )
            else:
                ids[domain] = row.id
                reused += [row.id, *(row.parts or [])]
    if reused:
        if current:
            _set_superseded(session, reused, None)
        else:
            # A late report still refers to them: keep them as long as the report.
            session.connection().execute(
                _BLOBS.update()
                .where(_BLOBS.c.id.in_(reused), _BLOBS.c.superseded_at < now)
                .values(superseded_at=now)
            )
    if current:
        replaced = [
            int(entry[0])
            for domain, entry in known.items()
            if domain not in ids or int(entry[0]) != ids[domain]
        ]
        # A replaced blob's parts go with it, except those the new blobs share.
        _set_superseded(
            session, sorted(set(_with_parts(session, replaced)) - {*added, *reused}), now
        )
        # The third element, the digest as sent, lets the next report skip checking
        # and serialising this domain again when it sends the same bytes. It is kept
        # while the content is: a domain whose bytes change at every report only by
        # derived ages (host: uptime) would otherwise rewrite this row every time.
        entries = {d: _entry(known.get(d), ids[d], split, d) for d in sorted(ids)}
        kept_map = (host.domain_blobs or {}).get(MAP)
        host.domain_blobs = {**entries, **({MAP: kept_map} if kept_map is not None else {})}
    return ids


def store_map(session: Session, host: Host, text: str, *, current: bool, now: datetime) -> int:
    """The blob id of a report's map (`report_map`), stored once per host per content
    and superseded like a domain's: current while it is the host's newest report's,
    kept by retention as long as a report received before then (see `retention`)."""
    digest = hashlib.sha256(text.encode()).hexdigest()
    known: dict[str, Any] = dict(host.domain_blobs or {})
    entry = known.get(MAP)
    if isinstance(entry, list) and entry[1] == digest:
        return int(entry[0])
    connection = session.connection()
    blob_id = connection.execute(
        select(_BLOBS.c.id).where(
            _BLOBS.c.host_id == host.id, _BLOBS.c.domain == MAP, _BLOBS.c.content_hash == digest
        )
    ).scalar()
    if blob_id is None:
        blob_id = _insert_blob(
            connection,
            host_id=host.id,
            domain=MAP,
            content_hash=digest,
            content=text,
            parts=None,
            first_seen_at=now,
            superseded_at=None if current else now,
        )
    elif current:
        _set_superseded(session, [blob_id], None)
    else:
        # A late report refers to it: keep it as long as the report (as for domains).
        connection.execute(
            _BLOBS.update()
            .where(_BLOBS.c.id == blob_id, _BLOBS.c.superseded_at < now)
            .values(superseded_at=now)
        )
    if current:
        if isinstance(entry, list):
            _set_superseded(session, [int(entry[0])], now)
        host.domain_blobs = {**known, MAP: [blob_id, digest]}
    return blob_id


def _insert(
    session: Session,
    host: Host,
    split: SplitFacts,
    domain: str,
    digest: str,
    *,
    now: datetime | None,
    first_seen: datetime,
    added: list[int],
    reused: list[int],
) -> int:
    """Store one domain's new content (a parted domain: its head and the parts not
    stored yet), superseded `now` (None: current). The ids the report now refers to
    are appended to `added` (inserted) and `reused` (parts stored before)."""
    parted = (
        split_parts(domain, strip_domain(domain, split.data[domain])) if domain in PARTED else None
    )
    part_ids: list[int] | None = None
    if parted is not None:
        part_ids = _store_parts(
            session,
            host,
            part_domain(domain),
            parted,
            now=now,
            first_seen=first_seen,
            added=added,
            reused=reused,
        )
    blob_id = _insert_blob(
        session.connection(),
        host_id=host.id,
        domain=domain,
        content_hash=digest,
        content=parted.head if parted is not None else split.text_of(domain),
        parts=part_ids,
        first_seen_at=first_seen,
        superseded_at=now,
    )
    added.append(blob_id)
    return blob_id


def _insert_blob(connection: Connection, **values: Any) -> int:
    """One blob row (Core: written once, never changed here); its id."""
    inserted = connection.execute(_BLOBS.insert().values(**values)).inserted_primary_key
    if inserted is None:
        raise DatabaseError("the database returned no id for the inserted blob")
    return int(inserted[0])


def _store_parts(
    session: Session,
    host: Host,
    domain: str,
    parted: Parted,
    *,
    now: datetime | None,
    first_seen: datetime,
    added: list[int],
    reused: list[int],
) -> list[int]:
    """The ids of a head's parts, in order, inserting the ones this host lacks."""
    digests = sorted({part.digest for part in parted.parts})
    have: dict[str, int] = {}
    for start in range(0, len(digests), LOAD_BATCH):
        rows = select(FactsBlob.content_hash, FactsBlob.id).where(
            FactsBlob.host_id == host.id,
            FactsBlob.domain == domain,
            FactsBlob.content_hash.in_(digests[start : start + LOAD_BATCH]),
        )
        have.update((digest, blob_id) for digest, blob_id in session.execute(rows))
    new: dict[str, FactsBlob] = {}
    for part in parted.parts:
        if part.digest not in have and part.digest not in new:
            new[part.digest] = FactsBlob(
                host_id=host.id,
                domain=domain,
                content_hash=part.digest,
                content=part.text,
                first_seen_at=first_seen,
                superseded_at=now,
            )
    reused.extend(have.values())
    if new:
        session.add_all(new.values())
        session.flush()
        have.update((digest, blob.id) for digest, blob in new.items())
        added.extend(blob.id for blob in new.values())
    return [have[part.digest] for part in parted.parts]


def _with_parts(session: Session, blob_ids: list[int]) -> list[int]:
    """`blob_ids` and the parts of those that are heads of parted domains."""
    answer = list(blob_ids)
    connection = session.connection()
    for start in range(0, len(blob_ids), LOAD_BATCH):
        rows = select(_BLOBS.c.parts).where(
            _BLOBS.c.id.in_(blob_ids[start : start + LOAD_BATCH]), _BLOBS.c.parts.is_not(None)
        )
        for parts in connection.execute(rows).scalars():
            answer.extend(int(part) for part in parts)
    return answer


def _entry(known: Any, blob_id: int, split: SplitFacts, domain: str) -> list[Any]:
    digest = split.domains[domain][1]
    if isinstance(known, list) and known[:2] == [blob_id, digest] and len(known) > 2:
        return known
    return [blob_id, digest, *([split.sent[domain]] if domain in split.sent else [])]


def _set_superseded(session: Session, blob_ids: list[int], when: datetime | None) -> None:
    connection = session.connection()
    for start in range(0, len(blob_ids), LOAD_BATCH):
        connection.execute(
            _BLOBS.update()
            .where(_BLOBS.c.id.in_(blob_ids[start : start + LOAD_BATCH]))
            .values(superseded_at=when)
        )


def report_map(
    split: SplitFacts,
    domains: Mapping[str, int],
    *,
    report_id: str,
    agent_id: str,
    seq: int,
    collected_at: datetime,
    agent_version: str,
) -> str:
    """What `store_map` stores for a report (revision 0008): its compact envelope and
    its domain -> blob id map, equal from one report to the next while the host's
    facts, errors and seq epoch do not change. The envelope keeps only the keys that
    differ from what the row tells (`_implied`; usually `seq_epoch` alone, errors when
    there are some): every implied key is required by the schema, so a stored envelope
    without one had it equal to its implied value (`load_facts` puts it back)."""
    envelope = _kept(
        split,
        report_id=report_id,
        agent_id=agent_id,
        seq=seq,
        collected_at=collected_at,
        agent_version=agent_version,
    )
    return canonical({"domains": dict(domains), "envelope": envelope})


def _kept(
    split: SplitFacts,
    *,
    report_id: str,
    agent_id: str,
    seq: int,
    collected_at: datetime,
    agent_version: str,
) -> dict[str, Any]:
    implied = implied_envelope(report_id, agent_id, seq, collected_at, agent_version)
    return {
        key: value
        for key, value in split.data.items()
        if key not in DOMAINS
        and not (key in implied and type(value) is type(implied[key]) and value == implied[key])
    }
