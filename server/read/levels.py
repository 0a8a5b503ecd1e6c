"""Hosts' security levels (cấp độ 1-5) for the read side.

A host's level is data in the collector's scopes (`security-level-<N>` host groups,
`rules.policy.frameworks.security_level`); it is computed when read, so a changed
scopes file changes every answer at once and nothing is stored.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from rules.policy.frameworks import declares_levels, security_level
from rules.policy.scopes import Scopes, Subject
from server.storage.models import Host


def host_levels(
    session: Session,
    scopes: Scopes | None,
    *,
    agency: str | None = None,
    scope: str | None = None,
) -> dict[int, int | None]:
    """host id -> its security level (None: unknown); empty when no scopes file
    declares a `security-level-<N>` group (then nothing is read)."""
    if scopes is None or not declares_levels(scopes):
        return {}
    query = select(Host.id, Host.agency_id, Host.hostname, Host.agent_id)
    if scope is not None:
        query = query.where(Host.agency_id == scope)
    if agency is not None:
        query = query.where(Host.agency_id == agency)
    return {
        host_id: security_level(scopes, Subject(agency_id, hostname, agent_id))
        for host_id, agency_id, hostname, agent_id in session.execute(query)
    }
