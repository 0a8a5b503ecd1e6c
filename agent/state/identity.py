"""The agent's identity on the wire (`agent_id`) and its sequence numbers.

The raw machine id is a secret-ish value (machine-id(5) says it should not be exposed
to untrusted parties) and stays the same for every program on the host. The agent
derives its id the way systemd's `sd_id128_get_machine_app_specific()` does: HMAC-SHA256
keyed with the machine id over an application id, truncated to 128 bits and stamped
as a UUID v4. `systemd-id128 machine-id --app-specific=<APP_ID> --uuid` prints the
same value, which lets an administrator find a host's agent id by hand.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import uuid
from dataclasses import dataclass, replace
from pathlib import Path

from agent.collectors.base import CollectorError
from agent.collectors.host import read_machine_id
from agent.errors import ConfigError, StateError
from agent.state.store import AgentState, StateStore

# canhgac's application id. Never change it: every agent's id is derived from it.
APP_ID = uuid.UUID("8195337c-5b06-47ad-babb-9eba8443ba54")

# The schema's agent_id pattern.
AGENT_ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}")


@dataclass(frozen=True)
class Identity:
    agent_id: str
    seq: int
    seq_epoch: str | None = None  # None when no state is kept (`--no-state`, `check`)


def app_specific_id(machine_id: str, app_id: uuid.UUID = APP_ID) -> str:
    """sd_id128_get_machine_app_specific(): HMAC-SHA256(machine id, app id) as a UUID v4."""
    digest = bytearray(hmac.new(bytes.fromhex(machine_id), app_id.bytes, hashlib.sha256).digest())
    digest[6] = (digest[6] & 0x0F) | 0x40  # version 4
    digest[8] = (digest[8] & 0x3F) | 0x80  # RFC 4122 variant
    return str(uuid.UUID(bytes=bytes(digest[:16])))


def validate_agent_id(value: str) -> str:
    if not AGENT_ID_PATTERN.fullmatch(value):
        raise ConfigError(
            f"invalid agent_id {value!r}: use 1-128 letters, digits, '.', '_', ':' or '-',"
            " starting with a letter or digit"
        )
    return value


def derived_agent_id(configured: str | None, root: Path) -> str | None:
    """The configured id, else the app-specific id of the machine, else None."""
    if configured:
        return validate_agent_id(configured)
    try:
        return app_specific_id(read_machine_id(root))
    except CollectorError:
        return None


def next_identity(store: StateStore, configured: str | None, root: Path) -> Identity:
    """The identity of a new report: its agent id and the next sequence number.

    Without a configured id or a machine id, a random id is generated once and kept in
    the state file so the agent stays the same host across runs.
    """
    agent_id = derived_agent_id(configured, root)

    def bump(state: AgentState) -> AgentState:
        random_id = state.agent_id
        if agent_id is None and random_id is None:
            random_id = str(uuid.uuid4())
        return replace(state, seq=state.seq + 1, agent_id=random_id)

    state = store.update(bump)
    final_id = agent_id or state.agent_id
    if final_id is None:  # unreachable: bump() always leaves an id when none is derived
        raise StateError("no agent id could be derived or generated")
    return Identity(agent_id=final_id, seq=state.seq, seq_epoch=state.seq_epoch)


def current_agent_id(store: StateStore, configured: str | None, root: Path) -> str:
    """The agent id reports will carry, without taking a sequence number (enrolment)."""
    agent_id = derived_agent_id(configured, root)
    if agent_id is not None:
        return agent_id

    def ensure_id(state: AgentState) -> AgentState:
        return state if state.agent_id else replace(state, agent_id=str(uuid.uuid4()))

    state = store.update(ensure_id)
    if state.agent_id is None:  # unreachable: ensure_id always leaves an id
        raise StateError("no agent id could be derived or generated")
    return state.agent_id
