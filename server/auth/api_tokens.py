"""API tokens for people and tools reading the API: `cga_<id>_<secret>` with a role.

`viewer` reads everything under /api/v1 (hosts, findings, scores, agencies);
`admin` also manages (agencies, agent revocation). Agent tokens are a different kind
(`cgt_`) and are refused by every read endpoint.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from server.auth.agent_tokens import hash_secret, new_secret, parse_secret, secret_matches
from server.clock import Clock
from server.errors import InvalidArgumentError, UnauthorizedError
from server.storage.models import ApiToken

API_PREFIX = "cga"
ROLES = ("viewer", "admin")


@dataclass(frozen=True)
class ApiCredential:
    token_id: str
    name: str
    role: str

    def allows(self, role: str) -> bool:
        return ROLES.index(self.role) >= ROLES.index(role)


def create_api_token(session: Session, name: str, role: str, clock: Clock) -> tuple[str, str]:
    """(token id, plain token); the plain token is shown once and never stored."""
    if role not in ROLES:
        raise InvalidArgumentError(f"role must be one of {', '.join(ROLES)}")
    if not name.strip() or len(name) > 255:
        raise InvalidArgumentError("the token name must be 1-255 characters")
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


def verify_api_token(session: Session, presented: str | None) -> ApiCredential:
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
    return ApiCredential(row.id, row.name, row.role)


def last_used(session: Session, token_id: str, now: datetime) -> None:
    token = session.get(ApiToken, token_id)
    if token is not None:
        token.last_used_at = now
