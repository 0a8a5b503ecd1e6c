"""The shape of `GET /api/v1/lan/devices` (pydantic), built by `server.read.lan`."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from server.read.views import Timestamp, View


class LanPort(View):
    """An open port as the discovering agent found it."""

    port: int = Field(ge=1, le=65535)
    protocol: Literal["tcp"]
    service: str = Field(description="a guess from the port number alone, never a banner")
    found_by: str = Field(description="syn (raw TCP SYN) or connect (TCP connect)")


class LanSighting(View):
    """One discovering agent's view of the device."""

    agent_id: str
    host: str = Field(description="the discovering host's label")
    ip: str
    found_by: str = Field(description="arp, icmp, tcp (a routed subnet) or connect")
    first_seen: Timestamp
    last_seen: Timestamp


class LanDevice(View):
    """One device of an agency's LAN: merged by MAC, then IP, over the agents that saw it."""

    agency: str
    mac: str | None = Field(description="null when no agent learnt it (TCP connect off-link)")
    ips: list[str]
    vendor: str = Field(description="from the agent's OUI table; empty when unknown")
    managed: bool = Field(description="its MAC or IP is an enrolled host's of the agency")
    managed_agent_id: str | None = Field(description="that enrolled host's agent id")
    found_by: list[str]
    first_seen: Timestamp = Field(description="the earliest over the agents that saw it")
    last_seen: Timestamp = Field(description="the latest over the agents that saw it")
    ports: list[LanPort]
    seen_by: list[LanSighting]


class LanDevicePage(View):
    items: list[LanDevice]
    total: int
    limit: int
    offset: int
    discovering_hosts: int = Field(
        description="hosts in scope whose latest report carried a discovery domain"
    )
