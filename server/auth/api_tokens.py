"""API tokens for people and tools reading the API: `cga_<id>_<secret>` with a role.

`viewer` reads everything under /api/v1 (hosts, findings, scores, agencies, audit);
`admin` also manages (agencies, agent revocation). A viewer token may be scoped to
one agency (an agency's own IT staff): it then reads only that agency, and the read
side filters by the scope in its queries. Admin tokens are always province-wide.
Agent tokens are a different kind (`cgt_`) and are refused by every read endpoint.

Each successful authentication stamps the token's `last_used_at` (what `api-token
list` shows), at most once per `LAST_USED_RESOLUTION` per token, so reading the API
does not turn every request into a database write.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import CursorResult, or_, select, update
from sqlalchemy.orm import Session

from server.auth.agent_tokens import hash_secret, new_secret, parse_secret, secret_matches
from server.clock import Clock, utc_now
from server.errors import DatabaseError, InvalidArgumentError, UnauthorizedError
from server.storage.database import Database
from server.storage.models import Agency, ApiToken

log = logging.getLogger(__name__)

LAST_USED_RESOLUTION = timedelta(minutes=1)

API_PREFIX = "cga"
ROLES = ("viewer", "admin")


@dataclass(frozen=True)
class ApiCredential:
    token_id: str
    name: str
    role: str
    agency: str | None = None  # the one agency this token reads; None = every agency

    def allows(self, role: str) -> bool:
        # An admin manages the province: a scoped row with role admin (never made by
        # `create_api_token`, but a hand-edited database could hold one) is no admin.
        if role == "admin" and self.agency is not None:
            return False
        return ROLES.index(self.role) >= ROLES.index(role)


def create_api_token(
    session: Session, name: str, role: str, clock: Clock, agency: str | None = None
) -> tuple[str, str]:
    """(token id, plain token); the plain token is shown once and never stored.

    `agency` scopes a viewer token to that (existing) agency; an admin manages the
    whole province, so an admin token cannot be scoped."""
    if role not in ROLES:
        raise InvalidArgumentError(f"role must be one of {', '.join(ROLES)}")
    if not name.strip() or len(name) > 255:
        raise InvalidArgumentError("the token name must be 1-255 characters")
    if agency is not None:
        if role != "viewer":
            raise InvalidArgumentError("only a viewer token can be scoped to an agency")
        if session.get(Agency, agency) is None:
            raise InvalidArgumentError(f"no agency {agency!r}")
    token_id, secret, plain = new_secret(API_PREFIX)
    session.add(
        ApiToken(
            id=token_id,
            name=name,
            role=role,
            secret_hash=hash_secret(secret),
            created_at=clock(),
            revoked_at=None,
            last_used_at=None,
            agency_id=agency,
        )
    )
    session.flush()
    return token_id, plain


def list_api_tokens(session: Session) -> list[ApiToken]:
    return list(session.scalars(select(ApiToken).order_by(ApiToken.created_at)))


def revoke_api_token(session: Session, token_id: str, clock: Clock) -> bool:
    token = session.get(ApiToken, token_id)
    if token is None:
        return False
    if token.revoked_at is None:
        token.revoked_at = clock()
    return True


def api_token_id_of(text: str) -> str:
    """The id of a full API token, or `text` itself when it is already an id."""
    try:
        return parse_secret(API_PREFIX, text.strip())[0]
    except UnauthorizedError:
        return text.strip()


def verify_api_token(
    session: Session, presented: str | None, clock: Clock = utc_now
) -> tuple[ApiCredential, datetime | None]:
    """The credential of a valid, unrevoked API token, and the moment to record as
    its last use when the recorded one is older than `LAST_USED_RESOLUTION` (else
    None). Reads only: `authenticate_api_token` records the use."""
    if not presented:
        raise UnauthorizedError("missing_token", "an API token is required")
    if not presented.startswith(API_PREFIX + "_"):
        raise UnauthorizedError("invalid_token", "this endpoint needs an API token (cga_...)")
    token_id, secret = parse_secret(API_PREFIX, presented)
    row = session.get(ApiToken, token_id)
    if not secret_matches(secret, row.secret_hash if row is not None else None):
        raise UnauthorizedError("invalid_token", "the API token is not valid")
    assert row is not None
    if row.revoked_at is not None:
        raise UnauthorizedError("invalid_token", "the API token has been revoked")
    now = clock()
    due = row.last_used_at is None or row.last_used_at <= now - LAST_USED_RESOLUTION
    credential = ApiCredential(row.id, row.name, row.role, row.agency_id)
    return credential, now if due else None


def authenticate_api_token(
    database: Database, presented: str | None, clock: Clock = utc_now
) -> ApiCredential:
    """Verify the token (a read) and, when due, record its last use (a short write)."""
    with database.session() as session:
        credential, used_at = verify_api_token(session, presented, clock)
    if used_at is not None:
        stamp_last_used(database, credential.token_id, used_at)
    return credential


def stamp_last_used(database: Database, token_id: str, now: datetime) -> bool:
    """Record `now` as the token's last use unless a use within `LAST_USED_RESOLUTION`
    is already recorded (by this replica or another); True when a row was written.

    Best effort: a database that cannot take the write is logged, and the request
    the token authenticates goes on (reading must not fail for want of a timestamp).
    """
    cutoff = now - LAST_USED_RESOLUTION
    statement = (
        update(ApiToken)
        .where(
            ApiToken.id == token_id,
            or_(ApiToken.last_used_at.is_(None), ApiToken.last_used_at <= cutoff),
        )
        .values(last_used_at=now)
        .execution_options(synchronize_session=False)
    )
    try:
        with database.write() as session:
            written = cast(CursorResult[Any], session.execute(statement)).rowcount == 1
    except DatabaseError as e:
        log.warning("cannot record the last use of API token %s: %s", token_id, e)
        return False
    return written
