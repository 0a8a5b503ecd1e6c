"""The `discovery` domain as a collector produces it: the configured (else attached)
subnets swept with the configured ports, when `agent.discovery.enabled` is set."""

from __future__ import annotations

from typing import Any

from agent.discovery.config import DiscoveryConfig
from agent.discovery.facts import result_dict
from agent.discovery.scan import run_scan
from agent.discovery.targets import attached_subnets, make_plan


def discovery_domain(settings: DiscoveryConfig) -> dict[str, Any]:
    """One scan as the facts domain; refusals and scan failures raise (the document
    builder turns them into an `errors` entry of the domain)."""
    return result_dict(run_scan(make_plan((), settings, attached_subnets())))
