"""An agency-scoped API token's limit, applied in the SQL of every read query.

`scope` (an agency id, from an agency-scoped API token) limits every answer to that
agency in the SQL itself, so a router that forgot a check still cannot leak another
agency: its hosts are "not found", and rankings hold only the scope's agency. Its
rank is the one among every agency (the evaluation's ranking is public; the other
agencies' scores and names are not), so the ranking alone reads every agency.
"""

from __future__ import annotations

from typing import TypeVarTuple

from sqlalchemy import Select

from server.storage.models import Host

Ts = TypeVarTuple("Ts")


def scoped(query: Select[*Ts], scope: str | None) -> Select[*Ts]:
    """`query` (which selects or joins `Host`) limited to the scope's agency."""
    return query if scope is None else query.where(Host.agency_id == scope)
