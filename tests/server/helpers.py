"""Builders and probes shared by the collector's tests."""

from __future__ import annotations

import gzip
import json
import uuid
import zlib
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from server.auth.agent_tokens import create_token
from server.auth.api_tokens import create_api_token
from server.auth.enrolment import add_agency, rotate_enrol_secret
from server.clock import utc_now
from server.storage.database import Database
from server.storage.models import (
    Agency,
    AgentToken,
    ApiToken,
    EnrolSecret,
    FactsBlob,
    Finding,
    Host,
    Report,
    RuleResultRow,
)

DATA = Path(__file__).resolve().parents[1] / "data" / "server"
RULES_DIR = DATA / "rules"
BAD_RULES_DIR = DATA / "bad-rules"
AGENCY = "so-test"


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def telnet(address: str = "0.0.0.0", port: int = 23) -> dict[str, Any]:
    return {
        "protocol": "tcp",
        "family": "ipv4",
        "address": address,
        "port": port,
        "exposure": "loopback" if address.startswith("127.") else "all",
        "pid": 321,
        "process": "inetd",
        "user": "root",
    }


def make_facts(
    *,
    agent_id: str = "agent-1",
    seq: int = 1,
    collected_at: datetime | None = None,
    hostname: str = "web01",
    listening: list[dict[str, Any]] | None = None,
    report_id: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """A valid canhgac.facts/v1 document; keyword arguments adjust it."""
    facts: dict[str, Any] = {
        "schema": "canhgac.facts/v1",
        "report_id": report_id or str(uuid.uuid4()),
        "agent_id": agent_id,
        "seq": seq,
        "collected_at": iso(collected_at or datetime.now(UTC)),
        "agent_version": "0.1.0",
        "host": {
            "hostname": hostname,
            "os": {"id": "debian", "name": "Debian GNU/Linux", "pretty_name": "Debian 12"},
            "kernel": {"release": "6.1.0-18-amd64"},
            "architecture": "x86_64",
        },
        "listening": listening if listening is not None else [],
        "errors": [],
    }
    facts.update(extra)
    return facts


def body_of(facts: dict[str, Any], *, compress: bool = False) -> bytes:
    raw = json.dumps(facts).encode("utf-8")
    return gzip.compress(raw) if compress else raw


def gzip_bomb(decompressed_bytes: int) -> bytes:
    """gzip of `decompressed_bytes` zeros, built a MiB at a time (never held in full)."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    block = bytes(1024 * 1024)
    parts = []
    remaining = decompressed_bytes
    while remaining > 0:
        chunk = block if remaining >= len(block) else bytes(remaining)
        parts.append(compressor.compress(chunk))
        remaining -= len(chunk)
    parts.append(compressor.flush())
    return b"".join(parts)


def deep_json(depth: int) -> bytes:
    return b'{"a":' * depth + b"1" + b"}" * depth


def stored_state(database: Database) -> dict[str, Any]:
    """Row counts of every table plus each token's binding: 'nothing stored' compares these."""
    with database.session() as session:
        state: dict[str, Any] = {
            model.__tablename__: session.scalar(select(func.count()).select_from(model))
            for model in (
                Agency,
                AgentToken,
                Host,
                Report,
                RuleResultRow,
                Finding,
                FactsBlob,
                EnrolSecret,
                ApiToken,
            )
        }
        state["tokens"] = sorted(
            (t.id, t.agent_id, t.last_used_at) for t in session.scalars(select(AgentToken))
        )
    return state


def new_token(database: Database, agency: str = AGENCY) -> str:
    """A fresh token of `agency` (created when absent), as the agent would present it."""
    with database.write() as session:
        _, plain = create_token(session, agency, None, utc_now)
    return plain


def new_enrol_secret(database: Database, agency: str = AGENCY) -> str:
    """The agency (added when absent) and a fresh enrolment secret for it."""
    with database.write() as session:
        add_agency(session, agency, f"Agency {agency}", utc_now)
        return rotate_enrol_secret(session, agency, None, utc_now)


def new_api_token(database: Database, role: str = "viewer") -> str:
    with database.write() as session:
        _, plain = create_api_token(session, f"test {role}", role, utc_now)
    return plain
