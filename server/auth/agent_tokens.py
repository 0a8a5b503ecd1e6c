"""Bearer secrets: agent tokens `cgt_<id>_<secret>` (here), enrolment secrets `cge_...`
(`enrolment.py`) and API tokens `cga_...` (`apitokens.py`) share one format.

The token id is public (it names the row, shows in `token list` and in logs); the
secret is 32 random bytes. Only SHA-256(secret) is stored. A fast unsalted hash is
right here, unlike for passwords: the secret is 256 bits from `secrets`, so there is
nothing to brute-force and a slow KDF would only slow down every report.
Verification looks the row up by token id, then compares hashes in constant time.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, or_, select
from sqlalchemy.orm import Session

from server.clock import Clock
from server.errors import ForbiddenError, InvalidArgumentError, UnauthorizedError
from server.storage.models import Agency, AgentToken, Host

# The table: the ingest path's statements run as Core on the session's connection,
# without the ORM's per-statement machinery (no entities, no autoflush needed).
_TOKENS = AgentToken.metadata.tables[AgentToken.__tablename__]

TOKEN_PREFIX = "cgt"  # noqa: S105 - a public prefix, not a secret
TOKEN_ID_CHARS = 10  # lowercase base32: 50 bits, unique enough for an id (not a secret)
SECRET_BYTES = 32
_SECRET_RE = r"([a-z2-7]{10})_([A-Za-z0-9_-]{43})"  # noqa: S105 - a pattern
_TOKEN_RE = re.compile(TOKEN_PREFIX + "_" + _SECRET_RE)
AGENCY_ID_PATTERN = r"[a-z0-9][a-z0-9._-]{0,63}"
_AGENCY_ID_RE = re.compile(AGENCY_ID_PATTERN)


@dataclass(frozen=True)
class Credential:
    """A verified token, as the ingest core needs it."""

    token_id: str
    agency_id: str
    agent_id: str | None  # the agent it is bound to, None before first use


@dataclass(frozen=True)
class TokenInfo:
    """What `token list` shows: never the secret or its hash."""

    token_id: str
    agency_id: str
    name: str
    agent_id: str | None
    created_at: datetime
    revoked_at: datetime | None
    last_used_at: datetime | None


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode("ascii")).hexdigest()


def parse_token(presented: str) -> tuple[str, str]:
    """Split a token into (token_id, secret); UnauthorizedError when malformed."""
    return parse_secret(TOKEN_PREFIX, presented)


def parse_secret(prefix: str, presented: str) -> tuple[str, str]:
    """Split `<prefix>_<id>_<secret>` into (id, secret); UnauthorizedError when malformed."""
    match = re.fullmatch(prefix + "_" + _SECRET_RE, presented)
    if match is None:
        raise UnauthorizedError("invalid_token", "the bearer token is malformed")
    return match.group(1), match.group(2)


def new_token_id() -> str:
    raw = base64.b32encode(secrets.token_bytes(10)).decode("ascii").lower()
    return raw[:TOKEN_ID_CHARS]


def new_secret(prefix: str) -> tuple[str, str, str]:
    """(id, secret, plain `<prefix>_<id>_<secret>`): 256 random bits of secret."""
    secret_id = new_token_id()
    secret = secrets.token_urlsafe(SECRET_BYTES)
    return secret_id, secret, f"{prefix}_{secret_id}_{secret}"


def secret_matches(secret: str, stored_hash: str | None) -> bool:
    """Constant-time comparison; an unknown id (None) costs the same and fails."""
    expected = stored_hash if stored_hash is not None else "0" * 64
    return hmac.compare_digest(hash_secret(secret), expected) and stored_hash is not None


def token_id_of(text: str) -> str:
    """The token id of a full agent token, or `text` itself when it is already an id."""
    match = _TOKEN_RE.fullmatch(text.strip())
    return match.group(1) if match else text.strip()


def check_agency_id(agency_id: str) -> None:
    if not _AGENCY_ID_RE.fullmatch(agency_id):
        raise InvalidArgumentError(
            f"agency id {agency_id!r} must be 1-64 characters of a-z 0-9 . _ -,"
            " starting with a letter or digit"
        )


def create_token(
    session: Session,
    agency_id: str,
    name: str | None,
    clock: Clock,
    agent_id: str | None = None,
) -> tuple[TokenInfo, str]:
    """Create a token (and its agency when absent); returns the info and the plain token.

    `agent_id` binds it at once (enrolment); otherwise its first report binds it.
    The plain token exists only in the return value: print it once, never store it.
    """
    check_agency_id(agency_id)
    now = clock()
    if session.get(Agency, agency_id) is None:
        session.add(Agency(id=agency_id, name=agency_id, created_at=now))
    token_id, secret, plain = new_secret(TOKEN_PREFIX)
    token = AgentToken(
        id=token_id,
        agency_id=agency_id,
        name=name or token_id,
        secret_hash=hash_secret(secret),
        agent_id=agent_id,
        created_at=now,
        revoked_at=None,
        last_used_at=None,
    )
    session.add(token)
    session.flush()
    return _info(token), plain


def list_tokens(session: Session, agency_id: str | None = None) -> list[TokenInfo]:
    query = select(AgentToken).order_by(AgentToken.agency_id, AgentToken.created_at)
    if agency_id is not None:
        query = query.where(AgentToken.agency_id == agency_id)
    return [_info(token) for token in session.scalars(query)]


def revoke_token(session: Session, token_id: str, clock: Clock) -> TokenInfo | None:
    """Revoke a token (idempotent); None when no such token exists."""
    token = session.get(AgentToken, token_id)
    if token is None:
        return None
    if token.revoked_at is None:
        token.revoked_at = clock()
    return _info(token)


def revoke_agent(session: Session, agent_id: str, clock: Clock) -> list[str]:
    """Revoke every token bound to `agent_id` (and its host's token); their ids."""
    now = clock()
    tokens = list(session.scalars(select(AgentToken).where(AgentToken.agent_id == agent_id)))
    host = session.scalars(select(Host).where(Host.agent_id == agent_id)).one_or_none()
    if host is not None and all(t.id != host.token_id for t in tokens):
        current = session.get(AgentToken, host.token_id)
        if current is not None:
            tokens.append(current)
    for token in tokens:
        if token.revoked_at is None:
            token.revoked_at = now
    return sorted(t.id for t in tokens)


def verify_token(session: Session, presented: str) -> Credential:
    """The credential of a presented token; UnauthorizedError when unknown or revoked."""
    token_id, secret = parse_token(presented)
    token = (
        session.connection()
        .execute(
            select(
                _TOKENS.c.id,
                _TOKENS.c.agency_id,
                _TOKENS.c.agent_id,
                _TOKENS.c.secret_hash,
                _TOKENS.c.revoked_at,
            ).where(_TOKENS.c.id == token_id)
        )
        .first()
    )
    # Hash even when the id is unknown, so both refusals cost about the same time.
    if not secret_matches(secret, token.secret_hash if token is not None else None):
        raise UnauthorizedError("invalid_token", "the bearer token is not valid")
    assert token is not None  # secret_matches is False for an unknown id
    if token.revoked_at is not None:
        raise UnauthorizedError("invalid_token", "the bearer token has been revoked")
    return Credential(token.id, token.agency_id, token.agent_id)


def _info(token: AgentToken) -> TokenInfo:
    return TokenInfo(
        token_id=token.id,
        agency_id=token.agency_id,
        name=token.name,
        agent_id=token.agent_id,
        created_at=token.created_at,
        revoked_at=token.revoked_at,
        last_used_at=token.last_used_at,
    )


def bind_token(session: Session, credential: Credential, agent_id: str, now: datetime) -> None:
    """Bind the token to `agent_id` on first use; refuse it for any other agent.

    One conditional UPDATE, so two first reports racing with different agent ids
    cannot both bind the token; revocation since authentication is caught here too.
    """
    statement = (
        _TOKENS.update()
        .where(
            _TOKENS.c.id == credential.token_id,
            _TOKENS.c.revoked_at.is_(None),
            or_(_TOKENS.c.agent_id.is_(None), _TOKENS.c.agent_id == agent_id),
        )
        .values(agent_id=agent_id, last_used_at=now)
    )
    connection = session.connection()
    if credential.agent_id != agent_id:
        # First use (or another agent's id): claiming the agent id is checked. A token
        # already bound to this agent passed that check when it bound, and the host's
        # own token check (`check_host_token`) still guards the host at every report.
        _refuse_if_agent_has_another_token(connection, credential, agent_id)
    if connection.execute(statement).rowcount == 1:
        return
    revoked = connection.execute(
        select(_TOKENS.c.revoked_at).where(_TOKENS.c.id == credential.token_id)
    ).first()
    if revoked is None or revoked.revoked_at is not None:
        raise UnauthorizedError("invalid_token", "the bearer token has been revoked")
    raise ForbiddenError(
        "token_bound_to_other_agent",
        f"this token belongs to another agent; agent {agent_id!r} needs its own token",
        "agent_id",
    )


def _refuse_if_agent_has_another_token(
    connection: Connection, credential: Credential, agent_id: str
) -> None:
    """An agent id with an active token (enrolled, or bound by an earlier report) cannot
    be claimed by another token, of this agency or, worse, of another one: otherwise a
    hand-made token could take over a host before its first report creates the row."""
    other = connection.execute(
        select(_TOKENS.c.agency_id)
        .where(
            _TOKENS.c.agent_id == agent_id,
            _TOKENS.c.revoked_at.is_(None),
            _TOKENS.c.id != credential.token_id,
        )
        .limit(1)
    ).first()
    if other is None:
        return
    if other.agency_id != credential.agency_id:
        raise ForbiddenError(
            "agent_of_other_agency",
            f"agent {agent_id!r} is registered to another agency",
            "agent_id",
        )
    raise ForbiddenError(
        "host_has_active_token",
        f"agent {agent_id!r} already has an active token; revoke it first to rotate",
        "agent_id",
    )


def check_host_token(session: Session, host: Host, credential: Credential) -> None:
    """A token may report for an existing host only if it is the host's token, or the
    host's token was revoked (rotation: revoke the old one, the new one then binds)."""
    if host.agency_id != credential.agency_id:
        # agent_id is chosen by the agent: without this, one agency's token could
        # overwrite another agency's host.
        raise ForbiddenError(
            "agent_of_other_agency",
            f"agent {host.agent_id!r} is registered to another agency",
            "agent_id",
        )
    if host.token_id == credential.token_id:
        return
    current = (
        session.connection()
        .execute(select(_TOKENS.c.revoked_at).where(_TOKENS.c.id == host.token_id))
        .first()
    )
    if current is not None and current.revoked_at is None:
        raise ForbiddenError(
            "host_has_active_token",
            f"agent {host.agent_id!r} already reports with another token; revoke it first"
            " (canhgac-server agent revoke)",
            "agent_id",
        )
