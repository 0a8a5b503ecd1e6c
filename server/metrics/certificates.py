"""Opt-in `canhgac_cert_not_after_timestamp_seconds`: every certificate of every host.

Off unless `server.metrics_cert_max_series` is set: then the host-state refresh reads
the `certificates` domain of the hosts whose latest report changed (through
`server.storage.fact_load`: two queries per 500 hosts), keeps (subject CN,
location, not_after) per host in memory, and a scrape renders at most the cap,
counting the rest. Subjects and locations come from agents: they are sanitised and
escaped like every label (server.metrics.textformat).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from server.metrics import textformat as tf
from server.metrics.summary import timestamp_of
from server.storage.database import Database
from server.storage.fact_load import load_domains

if TYPE_CHECKING:  # hoststate imports this module: annotations only
    from server.metrics.hoststate import HostSnapshot

CERT_NOT_AFTER = "canhgac_cert_not_after_timestamp_seconds"
# The first CN attribute of an RFC 4514 subject; escaped commas stay in the value.
_CN = re.compile(r"(?:^|,)\s*CN=((?:\\.|[^,\\])*)", re.IGNORECASE)

Certificate = tuple[str, str, float]  # subject CN, location, not_after (Unix time)


def subject_cn(subject: object) -> str:
    if not isinstance(subject, str):
        return ""
    match = _CN.search(subject)
    return match[1].strip() if match else ""


def certificates_of(items: object) -> tuple[Certificate, ...]:
    """(CN, location, not_after) per readable certificate; one per (CN, location),
    the earliest (two series with the same labels would be invalid)."""
    if not isinstance(items, list):
        return ()
    earliest: dict[tuple[str, str], float] = {}
    for item in items:
        if not isinstance(item, Mapping) or not isinstance(item.get("location"), str):
            continue
        not_after = timestamp_of(item.get("not_after"))
        if not_after is None:
            continue  # an unreachable endpoint, or unreadable: no series, never 0
        # Keyed as exported (sanitised, capped): two long locations equal after the
        # cap would otherwise be two series with the same labels.
        key = (tf.sanitise(subject_cn(item.get("subject"))), tf.sanitise(item["location"]))
        seconds = not_after.timestamp()
        earliest[key] = min(seconds, earliest.get(key, seconds))
    return tuple((cn, location, at) for (cn, location), at in sorted(earliest.items()))


def load_certificates(database: Database, report_pks: Sequence[int]) -> dict[int, object]:
    """The `certificates` domain (parsed JSON, or None when absent) of these reports,
    read through the fact store (every stored form of a domain)."""
    found: dict[int, object] = dict.fromkeys(report_pks)
    with database.session() as session:
        for report_pk, domains in load_domains(session, report_pks, ["certificates"]).items():
            found[report_pk] = domains.get("certificates")
    return found


@dataclass(frozen=True)
class HostCertificates:
    report_pk: int | None
    agency_id: str
    label: str
    certificates: tuple[Certificate, ...]


class CertificateIndex:
    """agent_id -> HostCertificates; one writer (the refresh), many scrapes."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._hosts: dict[str, HostCertificates] = {}

    def update(self, database: Database, snapshots: Iterable[HostSnapshot]) -> None:
        wanted = {snapshot.agent_id: snapshot for snapshot in snapshots}
        with self._lock:
            current = dict(self._hosts)
        stale = [
            s
            for s in wanted.values()
            if (known := current.get(s.agent_id)) is None or known.report_pk != s.results_report_pk
        ]
        pks = sorted({s.results_report_pk for s in stale if s.results_report_pk is not None})
        loaded = load_certificates(database, pks) if pks else {}  # outside the lock: I/O
        fresh = {agent_id: known for agent_id, known in current.items() if agent_id in wanted}
        for snapshot in stale:
            pk = snapshot.results_report_pk
            items = loaded.get(pk) if pk is not None else None
            fresh[snapshot.agent_id] = HostCertificates(
                pk, snapshot.agency_id, snapshot.label, certificates_of(items)
            )
        for agent_id, snapshot in wanted.items():
            known = fresh[agent_id]
            if (known.agency_id, known.label) != (snapshot.agency_id, snapshot.label):
                fresh[agent_id] = HostCertificates(
                    known.report_pk, snapshot.agency_id, snapshot.label, known.certificates
                )
        with self._lock:
            self._hosts = fresh

    def render(self, cap: int) -> tuple[str, int]:
        """The family's text with at most `cap` series, and how many were left out."""
        with self._lock:
            hosts = sorted(self._hosts.values(), key=lambda h: (h.agency_id, h.label))
        out = [
            tf.header(
                CERT_NOT_AFTER,
                "gauge",
                "not_after of each certificate of each host (Unix time; opt-in, capped: "
                "canhgac_metrics_series_dropped_total counts the rest).",
            )
        ]
        written = dropped = 0
        for host in hosts:
            base = [("agency", host.agency_id), ("host", host.label)]
            for cn, location, not_after in host.certificates:
                if written >= cap:
                    dropped += 1
                    continue
                label_text = tf.labels([*base, ("subject_cn", cn), ("location", location)])
                out.append(tf.sample(CERT_NOT_AFTER, label_text, not_after))
                written += 1
        return "".join(out), dropped
