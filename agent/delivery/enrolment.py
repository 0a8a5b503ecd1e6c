"""Enrolling the agent with the collector: an agency's enrolment secret buys a token.

`POST {server}/api/v1/enroll` with `Authorization: Bearer cge_...` and the host's
identity returns a per-agent token bound to this agent id and the agency. The token
is written with mode 0600 (never world-readable, even for an instant) to the
configured `token_file`, else to the state directory, and `run` reads it from the same
place when no other token is given.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agent import __version__
from agent.delivery.transport import (
    DEFAULT_TIMEOUT_SECONDS,
    check_server_url,
    check_token,
    isolated,
    new_session,
    post,
    rejection,
)
from agent.errors import ConfigError, ShippingError

if TYPE_CHECKING:
    import requests  # imported when a session is made (transport.new_session)

ENROL_PATH = "/api/v1/enroll"
TOKEN_FILE_NAME = "agent.token"  # noqa: S105 - a file name, not a secret


@dataclass(frozen=True)
class Enrolment:
    agency: str
    agent_id: str
    token_id: str
    token: str


def enroll(
    server_url: str,
    secret: str,
    *,
    agent_id: str,
    hostname: str,
    machine_id: str | None = None,
    ca_file: Path | None = None,
    timeout: float = DEFAULT_TIMEOUT_SECONDS,
    session: requests.Session | None = None,
) -> Enrolment:
    """Ask the collector for this agent's token; TLS verified as for reports."""
    url = check_server_url(server_url) + ENROL_PATH
    if ca_file is not None and not ca_file.is_file():
        raise ConfigError(f"CA file not found: {ca_file}")
    body: dict[str, Any] = {"agent_id": agent_id, "hostname": hostname}
    if machine_id:
        body["machine_id"] = machine_id
    headers = {
        "Authorization": f"Bearer {check_token(secret)}",
        "User-Agent": f"canhgac-agent/{__version__}",
        "Accept": "application/json",
    }
    verify = str(ca_file) if ca_file is not None else True
    http = isolated(session) if session is not None else new_session()
    response = post(http, url, headers, timeout=timeout, verify=verify, json=body)
    with response:
        if not 200 <= response.status_code < 300:
            raise rejection(url, response)
        return _enrolment(url, response)


def _enrolment(url: str, response: requests.Response) -> Enrolment:
    try:
        data = response.json()
        fields = {name: data[name] for name in ("agency", "agent_id", "token_id", "token")}
    except (ValueError, KeyError, TypeError) as e:
        raise ShippingError(
            f"unexpected answer from {url}: not an enrolment", url=url, detail=str(e)
        ) from e
    if not all(isinstance(value, str) and value for value in fields.values()):
        raise ShippingError(
            f"unexpected answer from {url}: empty fields", url=url, detail=json.dumps(list(fields))
        )
    return Enrolment(**fields)


def save_token(target: Path, token: str) -> Path:
    """Write the token atomically to `target` (the state directory's `agent.token`, or
    the configured `token_file`), mode 0600 from creation; its directory is created
    0700 when missing."""
    directory = target.parent
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, temporary = tempfile.mkstemp(dir=directory, prefix=".agent.token.")  # created 0600
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(check_token(token) + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return target
