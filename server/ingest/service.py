"""The ingest core: one report in, one answer out, no web framework involved.

`IngestService.ingest` takes the raw body, its Content-Encoding and a verified
credential; it checks the agent's rate, decodes and validates the document
(`payload`), splits it by domain (`storage.fact_store`), evaluates it with the collector's
policy unless its facts are unchanged since the host's current state, and stores
everything in ONE transaction (`storage.report_store`). It answers only after the commit: an
acknowledged report is durable, and a refused one (any `IngestError`) left nothing.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select

from rules.policy.scoring import score_results
from server.auth.agent_tokens import Credential, bind_token, check_host_token, verify_token
from server.clock import Clock, utc_now
from server.config import ServerConfig
from server.errors import (
    ConstraintViolation,
    DatabaseError,
    ForbiddenError,
    PayloadTooLargeError,
    ServerError,
    TooManyRequestsError,
    UnauthorizedError,
)
from server.evaluation.loaded_policy import ServerPolicy
from server.ingest.payload import FactsDocument, Limits, TrustedFor, decode_document
from server.ingest.ratelimit import RateLimiter
from server.ingest.schema_check import compile_validators
from server.metrics.hoststate import HostSnapshot, snapshot_of
from server.metrics.summary import posture_of
from server.storage.database import Database
from server.storage.fact_store import SplitFacts, split_facts, unchanged_domains
from server.storage.models import Report
from server.storage.report_store import (
    DuplicateReport,
    Evaluated,
    HostState,
    Reporter,
    ReportHeader,
    can_reuse_results,
    is_newest,
    lock_host,
    read_host_state,
    store_report,
)

log = logging.getLogger(__name__)

ACCEPTED = "accepted"
# Decoding holds up to a few copies of a decompressed body (50 MiB by default): only
# this many at once per process, so concurrent large bodies cannot add up to gigabytes.
MAX_CONCURRENT_DECODES = 4
# A body waiting longer than this for a decoding slot is told to come back (429).
DECODE_WAIT_SECONDS = 10.0
# What one report may add to the database (canonical JSON of envelope and domains);
# a large real host stores well under 2 MiB. Free-form text cannot grow it further.
MAX_STORED_BYTES = 8 * 1024 * 1024
# After a failed write (disk full, database read-only) the replica reports itself not
# ready for this long, then ready again so that one real write can tell (a breaker's
# half-open state): nothing else would ever send it a write to prove it recovered.
WRITE_FAILURE_HOLD_SECONDS = 30.0
DUPLICATE = "duplicate"
# Agents remembered as having stored facts (which parse to use for their reports).
MAX_STORED_AGENTS = 200_000
# One retry covers the races a unique constraint settles (two first reports of one
# agent creating its host); a second conflict is not a race any more.
_STORE_ATTEMPTS = 2


@dataclass(frozen=True)
class IngestResult:
    status: str  # accepted | duplicate
    report_id: str
    score: float | None = None
    failing: int = 0
    applied: bool = False  # whether the report became the host's current state
    evaluated: bool = False
    dropped_keys: int = 0  # keys the schema does not define: dropped, not stored

    def to_body(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "status": self.status,
            "report_id": self.report_id,
            "duplicate": self.status == DUPLICATE,
        }
        if self.status == ACCEPTED:
            body["score"] = self.score
            body["failing"] = self.failing
            body["applied"] = self.applied
            body["dropped_keys"] = self.dropped_keys
        return body


@dataclass(frozen=True)
class Committed:
    """What the ingest learnt from one committed report (plain values, no ORM rows)."""

    snapshot: HostSnapshot
    newest: bool
    evaluated: bool
    score_ratio: float | None
    failing: int


def header_of(document: FactsDocument) -> ReportHeader:
    return ReportHeader(
        report_id=document.report_id,
        agent_id=document.agent_id,
        seq=document.seq,
        seq_epoch=document.seq_epoch,
        collected_at=document.collected_at,
        agent_version=document.agent_version,
        hostname=document.hostname,
        os_pretty_name=document.os_pretty_name,
        posture=posture_of(document.data),
    )


def _check_stored_size(split: SplitFacts) -> None:
    # Domains sent as the host's current ones are stored already (and were checked).
    size = split.new_bytes()
    if size > MAX_STORED_BYTES:
        raise PayloadTooLargeError(
            "report_too_large_to_store",
            f"the report would store {size} bytes; the limit is {MAX_STORED_BYTES}",
        )


def limits_of(config: ServerConfig) -> Limits:
    return Limits(
        max_body_bytes=config.max_body_bytes,
        max_decompressed_bytes=config.max_decompressed_bytes,
        max_json_depth=config.max_json_depth,
        future_skew=timedelta(seconds=config.future_skew_seconds),
        max_list_items=config.max_list_items,
    )


class IngestService:
    """Authenticates agents and ingests their reports."""

    def __init__(
        self,
        database: Database,
        policy: ServerPolicy,
        limits: Limits,
        *,
        clock: Clock = utc_now,
        on_commit: Callable[[HostSnapshot], None] | None = None,
        rate_limiter: RateLimiter | None = None,
        max_concurrent_decodes: int = MAX_CONCURRENT_DECODES,
        decode_wait: float = DECODE_WAIT_SECONDS,
    ) -> None:
        self._database = database
        self.policy = policy  # replaced as a whole on reload (an atomic reference swap)
        self._limits = limits
        self._clock = clock
        self._on_commit = on_commit
        self._rate_limiter = rate_limiter
        self._decoding = threading.Semaphore(max_concurrent_decodes)
        self._decode_wait = decode_wait
        self._write_failed_at: float | None = None  # monotonic time of the last failure
        self._stored_agents: set[str] = set()  # agents this process stored a report of
        compile_validators()  # now, not on the first request

    @property
    def limits(self) -> Limits:
        return self._limits

    def authenticate(self, presented: str | None) -> Credential:
        """The credential for a bearer token; UnauthorizedError when missing or invalid."""
        if not presented:
            raise UnauthorizedError("missing_token", "a bearer token is required")
        with self._database.session() as session:
            return verify_token(session, presented)

    def check_rate(self, credential: Credential) -> None:
        if self._rate_limiter is None:
            return
        wait = self._rate_limiter.check(credential.token_id)
        if wait > 0:
            raise TooManyRequestsError(
                "rate_limited", f"too many reports from this agent; retry in {wait:.0f} s", wait
            )

    def ingest(
        self, credential: Credential, body: bytes, content_encoding: str | None
    ) -> IngestResult:
        received_at = self._clock()
        hosts: dict[str, HostState | None] = {}
        known: dict[str, bool] = {}  # report id -> whether it is stored already

        def trusted_for(envelope: Mapping[str, Any], sent: Mapping[str, str]) -> frozenset[str]:
            """Domains sent exactly as this host's current ones: validated already."""
            agent_id = envelope["agent_id"]
            if credential.agent_id is not None and credential.agent_id != agent_id:
                return frozenset()  # refused below: read nothing of another agent
            # One read for the host and the duplicate check below.
            report_id = envelope["report_id"]
            hosts[agent_id], known[report_id] = self._read_host(agent_id, report_id)
            host = hosts[agent_id]
            return unchanged_domains(host.domain_blobs if host else None, sent)

        # An agent this process stored nothing for yet (its first report, or its first
        # here): most likely nothing of it can be trusted, so parse it once.
        first = credential.agent_id not in self._stored_agents
        document = self._decode(body, content_encoding, received_at, trusted_for, first)
        if credential.agent_id is not None and credential.agent_id != document.agent_id:
            # Checked again, authoritatively, inside the transaction (bind_token).
            raise ForbiddenError(
                "token_bound_to_other_agent",
                "this token belongs to another agent",
                "agent_id",
            )
        if document.agent_id in hosts and document.report_id in known:
            host, exists = hosts[document.agent_id], known[document.report_id]
        else:
            host, exists = self._read_host(document.agent_id, document.report_id)
        if exists:
            # The common retry after a lost acknowledgement: skip the evaluation.
            return IngestResult(DUPLICATE, document.report_id)
        policy = self.policy
        header = header_of(document)
        # Ages derived from timestamps change with every report while nothing on the
        # host did: split_facts stores and compares without them (load_facts puts
        # them back), and reuses the hash of a domain sent as the host's current one.
        split = split_facts(document.data, host.domain_blobs if host else None, document.sent)
        _check_stored_size(split)
        evaluated = None
        # A cheap read before the transaction: may evaluation be skipped? (The
        # transaction decides again; if the answer changed meanwhile it evaluates.)
        if not (
            host is not None
            and is_newest(host, header)
            and can_reuse_results(host, split.digest, policy.fingerprint, received_at)
        ):
            evaluated = self._evaluate(policy, document, split, credential, received_at)
        try:
            stored = self._store(
                credential,
                header=header,
                document=document,
                split=split,
                policy=policy,
                evaluated=evaluated,
                received_at=received_at,
            )
        except ConstraintViolation:
            raise  # a conflict between writers, not a database that cannot write
        except DatabaseError:
            self._write_failed_at = time.monotonic()
            raise
        self._write_failed_at = None
        if stored is None:
            return IngestResult(DUPLICATE, document.report_id)
        if len(self._stored_agents) >= MAX_STORED_AGENTS:
            self._stored_agents.clear()  # a hint only: forgetting costs one slower parse
        self._stored_agents.add(document.agent_id)
        if stored.newest and self._on_commit is not None:
            self._on_commit(stored.snapshot)
        return IngestResult(
            ACCEPTED,
            document.report_id,
            stored.score_ratio,
            stored.failing,
            applied=stored.newest,
            evaluated=stored.evaluated,
            dropped_keys=len(document.dropped_keys) + document.dropped_nested,
        )

    def readiness_problems(self) -> list[str]:
        """Why this replica should not get reports now (empty: ready). Codes, not text."""
        problems: list[str] = []
        failed_at = self._write_failed_at
        if failed_at is not None and time.monotonic() - failed_at < WRITE_FAILURE_HOLD_SECONDS:
            problems.append("database_writes_failing")
        if self._decoding.acquire(blocking=False):
            self._decoding.release()
        else:
            problems.append("overloaded")
        if not self.policy.ruleset.rules:
            problems.append("no_rules_loaded")
        return problems

    def _decode(
        self,
        body: bytes,
        content_encoding: str | None,
        received_at: datetime,
        trusted_for: TrustedFor,
        first: bool = False,
    ) -> FactsDocument:
        if not self._decoding.acquire(timeout=self._decode_wait):
            raise TooManyRequestsError(
                "overloaded", "the collector is decoding too many reports; retry later", 30.0
            )
        try:
            document = decode_document(
                body,
                content_encoding,
                self._limits,
                received_at,
                trusted_for,
                expect_trusted=not first,
            )
        finally:
            self._decoding.release()
        if document.dropped_keys:
            # %r: the names are the agent's text, never printed raw into the log.
            log.warning(
                "report %s: dropped %d unknown top-level key(s): %r",
                document.report_id,
                len(document.dropped_keys),
                [k[:64] for k in document.dropped_keys[:10]],
            )
        if document.dropped_nested:
            log.warning(
                "report %s: dropped %d key(s) the schema does not define, first at %r",
                document.report_id,
                document.dropped_nested,
                list(document.dropped_paths),
            )
        return document

    def _evaluate(
        self,
        policy: ServerPolicy,
        document: FactsDocument,
        split: SplitFacts,
        credential: Credential,
        now: datetime,
    ) -> Evaluated:
        # Each domain's digests: rules that read only unchanged ones are carried.
        digests = {d: (stored, split.sent.get(d)) for d, (_, stored) in split.domains.items()}
        outcome = policy.evaluate(
            document.data,
            credential.agency_id,
            document.hostname,
            document.agent_id,
            now.date(),
            digests=digests,
        )
        return Evaluated(outcome.results, score_results(outcome.results, policy.weights))

    def _read_host(self, agent_id: str, report_id: str) -> tuple[HostState | None, bool]:
        """The agent's host state as it is now (read outside any write) and whether
        `report_id` is stored already."""
        with self._database.session() as session:
            return read_host_state(session, agent_id, report_id)

    def _store(
        self,
        credential: Credential,
        *,
        header: ReportHeader,
        document: FactsDocument,
        split: SplitFacts,
        policy: ServerPolicy,
        evaluated: Evaluated | None,
        received_at: datetime,
    ) -> Committed | None:
        """Store in one transaction; None when the report id turned out to be known.

        The token is bound to the agent and checked against the host's token inside
        the same transaction as the report, so a refusal leaves nothing behind."""
        reporter = Reporter(credential.token_id, credential.agency_id)
        for attempt in range(1, _STORE_ATTEMPTS + 1):
            try:
                with self._database.write() as session:
                    bind_token(session, credential, document.agent_id, received_at)
                    host = lock_host(session, document.agent_id)
                    if host is not None:
                        check_host_token(session, host, credential)
                    stored = store_report(
                        session,
                        host,
                        reporter,
                        header,
                        split,
                        fingerprint=policy.fingerprint,
                        evaluated=evaluated,
                        evaluate=lambda: self._evaluate(
                            policy, document, split, credential, received_at
                        ),
                        received_at=received_at,
                    )
                    return Committed(
                        snapshot_of(stored.host),
                        stored.newest,
                        stored.evaluated,
                        stored.score_ratio,
                        stored.failing,
                    )
            except DuplicateReport:
                return None
            except ConstraintViolation as e:
                # Another transaction (this replica or another) stored the same
                # report id, or created this agent's host, between our read and write.
                if self._report_exists(document.report_id):
                    return None
                if attempt == _STORE_ATTEMPTS:
                    raise DatabaseError(f"cannot store report {document.report_id}: {e}") from e
        raise ServerError("unreachable: the store loop always returns or raises")

    def _report_exists(self, report_id: str) -> bool:
        with self._database.session() as session:
            found = session.scalar(select(Report.id).where(Report.report_id == report_id))
        return found is not None
