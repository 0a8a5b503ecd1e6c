"""Agencies and enrolment: an agency's enrolment secret buys each of its hosts a token.

`canhgac-server agency enrol-secret ID` creates (or rotates) the agency's secret
`cge_<id>_<secret>`; the administrator hands it to the agency's system administrators.
An agent enrols once (`POST /api/v1/enroll`, the secret as bearer, its identity in the
body) and receives its own agent token, bound to its agent id and the agency.
Only SHA-256 hashes of secrets are stored; comparisons are constant-time.

An agent id that already has an active token cannot enrol again: otherwise anyone
with the agency's secret could take over any host of the agency. Re-enrolling a
host (reinstalled, lost token) needs `canhgac-server agent revoke ID` first.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from server.auth.agent_tokens import (
    check_agency_id,
    create_token,
    hash_secret,
    new_secret,
    parse_secret,
    secret_matches,
)
from server.clock import Clock
from server.errors import (
    ConflictError,
    ForbiddenError,
    InvalidArgumentError,
    UnauthorizedError,
    UnprocessableError,
)
from server.storage.models import Agency, AgentToken, EnrolSecret, Host

ENROL_PREFIX = "cge"
_AGENT_ID_RE = re.compile(r"[A-Za-z0-9._:-]{1,128}")
_MAX_HOSTNAME = 255


@dataclass(frozen=True)
class AgencyInfo:
    id: str
    name: str
    created_at: datetime
    hosts: int
    enrol_secret_expires_at: datetime | None
    has_enrol_secret: bool


@dataclass(frozen=True)
class Enrolment:
    agency_id: str
    agent_id: str
    token_id: str
    token: str  # the plain agent token: returned once, never stored

    def to_body(self) -> dict[str, Any]:
        return {
            "agency": self.agency_id,
            "agent_id": self.agent_id,
            "token_id": self.token_id,
            "token": self.token,
        }


def add_agency(session: Session, agency_id: str, name: str, clock: Clock) -> Agency:
    check_agency_id(agency_id)
    if not name.strip() or len(name) > 255:
        raise InvalidArgumentError("the agency name must be 1-255 characters")
    agency = session.get(Agency, agency_id)
    if agency is not None:
        agency.name = name
        return agency
    agency = Agency(id=agency_id, name=name, created_at=clock())
    session.add(agency)
    session.flush()
    return agency


def list_agencies(session: Session, now: datetime) -> list[AgencyInfo]:
    agencies = list(session.scalars(select(Agency).order_by(Agency.id)))
    counts: dict[str, int] = {}
    for (agency_id,) in session.execute(select(Host.agency_id)):
        counts[agency_id] = counts.get(agency_id, 0) + 1
    secrets = {s.agency_id: s for s in session.scalars(select(EnrolSecret)) if _usable(s, now)}
    return [
        AgencyInfo(
            a.id,
            a.name,
            a.created_at,
            counts.get(a.id, 0),
            secrets[a.id].expires_at if a.id in secrets else None,
            a.id in secrets,
        )
        for a in agencies
    ]


def rotate_enrol_secret(
    session: Session, agency_id: str, expires_at: datetime | None, clock: Clock
) -> str:
    """A new enrolment secret for the agency (its previous ones stop working)."""
    if session.get(Agency, agency_id) is None:
        raise InvalidArgumentError(f"no agency {agency_id!r}: add it with `agency add`")
    now = clock()
    if expires_at is not None and expires_at <= now:
        raise InvalidArgumentError("the expiry must be in the future")
    for old in session.scalars(
        select(EnrolSecret).where(
            EnrolSecret.agency_id == agency_id, EnrolSecret.revoked_at.is_(None)
        )
    ):
        old.revoked_at = now
    secret_id, secret, plain = new_secret(ENROL_PREFIX)
    session.add(
        EnrolSecret(
            id=secret_id,
            agency_id=agency_id,
            secret_hash=hash_secret(secret),
            created_at=now,
            expires_at=expires_at,
            revoked_at=None,
        )
    )
    session.flush()
    return plain


def _usable(secret: EnrolSecret, now: datetime) -> bool:
    return secret.revoked_at is None and (secret.expires_at is None or secret.expires_at > now)


def verify_enrol_secret(session: Session, presented: str | None, now: datetime) -> str:
    """The agency id of a valid enrolment secret; UnauthorizedError otherwise."""
    if not presented:
        raise UnauthorizedError("missing_token", "the agency's enrolment secret is required")
    secret_id, secret = parse_secret(ENROL_PREFIX, presented)
    row = session.get(EnrolSecret, secret_id)
    if not secret_matches(secret, row.secret_hash if row is not None else None):
        raise UnauthorizedError("invalid_token", "the enrolment secret is not valid")
    assert row is not None
    if row.revoked_at is not None:
        raise UnauthorizedError("invalid_token", "the enrolment secret was rotated or revoked")
    if row.expires_at is not None and row.expires_at <= now:
        raise UnauthorizedError("invalid_token", "the enrolment secret has expired")
    return row.agency_id


# Unicode categories no host name has: controls (ESC, newline), format characters
# (bidi overrides, zero-width), line and paragraph separators, surrogates, private use.
_INVISIBLE = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs", "Co", "Cn"})


def _has_invisible(text: str) -> bool:
    return any(unicodedata.category(c) in _INVISIBLE for c in text)


def parse_enrol_request(body: Any) -> tuple[str, str]:
    """(agent_id, hostname) from the JSON body; UnprocessableError naming the field."""
    if not isinstance(body, dict):
        raise UnprocessableError("invalid_request", "the body must be a JSON object")
    agent_id, hostname = body.get("agent_id"), body.get("hostname")
    if not isinstance(agent_id, str) or not _AGENT_ID_RE.fullmatch(agent_id):
        raise UnprocessableError(
            "invalid_request",
            "agent_id must be 1-128 characters of A-Z a-z 0-9 . _ : -",
            "agent_id",
        )
    if not isinstance(hostname, str) or not 0 < len(hostname) <= _MAX_HOSTNAME:
        raise UnprocessableError(
            "invalid_request", "hostname must be a string of 1-255 characters", "hostname"
        )
    if _has_invisible(hostname):
        # The hostname becomes the token's name, printed by `token list` and in logs:
        # escape sequences, bidi overrides or newlines there would forge the output.
        raise UnprocessableError(
            "invalid_request",
            "hostname must not contain control, format or line-separator characters",
            "hostname",
        )
    machine_id = body.get("machine_id")
    if machine_id is not None and (not isinstance(machine_id, str) or len(machine_id) > 128):
        raise UnprocessableError(
            "invalid_request",
            "machine_id must be a string of at most 128 characters",
            "machine_id",
        )
    return agent_id, hostname


def enrol(
    session: Session, agency_id: str, agent_id: str, hostname: str, clock: Clock
) -> Enrolment:
    host = session.scalars(
        select(Host).where(Host.agent_id == agent_id).with_for_update()
    ).one_or_none()
    if host is not None and host.agency_id != agency_id:
        raise ForbiddenError(
            "agent_of_other_agency",
            f"agent {agent_id!r} is registered to another agency",
            "agent_id",
        )
    active = session.scalar(
        select(AgentToken.id).where(
            AgentToken.agent_id == agent_id, AgentToken.revoked_at.is_(None)
        )
    )
    if active is None and host is not None:
        current = session.get(AgentToken, host.token_id)
        active = current.id if current is not None and current.revoked_at is None else None
    if active is not None:
        raise ConflictError(
            "already_enrolled",
            f"agent {agent_id!r} is already enrolled; an administrator must revoke it"
            " first (canhgac-server agent revoke)",
        )
    info, plain = create_token(session, agency_id, hostname[:255], clock, agent_id=agent_id)
    return Enrolment(agency_id, agent_id, info.token_id, plain)
