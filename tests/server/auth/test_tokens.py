"""Agent tokens: format, storage of the hash only, verification, revocation."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy import select

from server.auth.agent_tokens import (
    create_token,
    list_tokens,
    parse_token,
    revoke_token,
    verify_token,
)
from server.clock import utc_now
from server.errors import InvalidArgumentError, UnauthorizedError
from server.storage.database import Database
from server.storage.models import Agency, AgentToken

TOKEN_RE = re.compile(r"cgt_[a-z2-7]{10}_[A-Za-z0-9_-]{43}")


def make(database: Database, agency: str = "so-test", name: str | None = None) -> str:
    with database.write() as session:
        _, plain = create_token(session, agency, name, utc_now)
    return plain


def test_format_and_entropy(database: Database) -> None:
    tokens = {make(database) for _ in range(20)}
    assert len(tokens) == 20
    for token in tokens:
        assert TOKEN_RE.fullmatch(token), token
        token_id, secret = parse_token(token)
        assert len(token_id) == 10
        assert len(secret) == 43  # 32 random bytes, URL-safe base64


def test_only_the_hash_is_stored(database: Database, db_url: str) -> None:
    token = make(database)
    token_id, secret = parse_token(token)
    with database.session() as session:
        row = session.get(AgentToken, token_id)
        assert row is not None
        assert row.secret_hash == hashlib.sha256(secret.encode()).hexdigest()
    if db_url.startswith("sqlite"):
        database.dispose()  # flush the WAL into the file
        folder = Path(db_url.removeprefix("sqlite:///")).parent
        raw = b"".join(p.read_bytes() for p in folder.iterdir())
    else:
        with database.engine.connect() as connection:
            raw = "".join(
                str(list(connection.exec_driver_sql(f"SELECT * FROM {table}")))
                for table in sa.inspect(connection).get_table_names()
            ).encode()
    assert secret.encode() not in raw


def test_agency_created_once_with_its_id_as_name(database: Database) -> None:
    make(database, "so-a", name="web01")
    make(database, "so-a")
    with database.session() as session:
        agencies = list(session.scalars(select(Agency)))
        assert [(a.id, a.name) for a in agencies] == [("so-a", "so-a")]
        names = sorted(t.name for t in session.scalars(select(AgentToken)))
    assert "web01" in names


@pytest.mark.parametrize("agency", ["", "UPPER", "-lead", "has space", "x" * 65])
def test_invalid_agency_ids(database: Database, agency: str) -> None:
    with pytest.raises(InvalidArgumentError):
        make(database, agency)


def test_verify(database: Database) -> None:
    token = make(database)
    with database.session() as session:
        credential = verify_token(session, token)
    assert credential.token_id == parse_token(token)[0]
    assert (credential.agency_id, credential.agent_id) == ("so-test", None)


@pytest.mark.parametrize(
    "mangle",
    [
        lambda t: t[:-1] + ("A" if t[-1] != "A" else "B"),  # wrong secret
        lambda t: "cgt_" + "a" * 10 + t[15:],  # unknown id
        lambda t: t + "x",  # malformed
        lambda t: t.replace("cgt_", "xyz_"),
        lambda t: "",
    ],
    ids=["wrong-secret", "unknown-id", "too-long", "wrong-prefix", "empty"],
)
def test_verify_refuses(database: Database, mangle: object) -> None:
    token = make(database)
    with pytest.raises(UnauthorizedError) as caught, database.session() as session:
        verify_token(session, mangle(token))  # type: ignore[operator]
    assert caught.value.status == 401


def test_revoked_tokens_are_refused(database: Database) -> None:
    token = make(database)
    token_id = parse_token(token)[0]
    with database.write() as session:
        info = revoke_token(session, token_id, utc_now)
    assert info is not None and info.revoked_at is not None
    with pytest.raises(UnauthorizedError, match="revoked"), database.session() as session:
        verify_token(session, token)
    with database.write() as session:
        again = revoke_token(session, token_id, utc_now)
    assert again is not None and again.revoked_at == info.revoked_at  # idempotent
    with database.write() as session:
        assert revoke_token(session, "nosuchtoken", utc_now) is None


def test_list_tokens_has_no_secrets(database: Database) -> None:
    make(database, "so-a")
    make(database, "so-b")
    with database.session() as session:
        everything = list_tokens(session)
        only_b = list_tokens(session, "so-b")
    assert [t.agency_id for t in everything] == ["so-a", "so-b"]
    assert [t.agency_id for t in only_b] == ["so-b"]
    assert not any(hasattr(t, "secret_hash") or hasattr(t, "secret") for t in everything)
