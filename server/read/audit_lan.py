"""The audit's LAN section: an agency's unmanaged devices as of the cut-off.

Read from the very reports the rest of the audit uses (each host's newest evaluated
report before the cut-off), through the same merge as the live view
(`server.read.lan.merge_agency`), so an audit as of a past date shows the LAN as it
was then. A device is managed when it is one of the agency's hosts counted by the
audit. An agency none of whose reports carried a `discovery` domain is not assessed:
its counts are null, never "0 unmanaged devices".

A risky port is one a rule of the `lan-discovery` pack judges (its `ports` param),
so the flag follows the policy the audit is judged by.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from datetime import datetime

from sqlalchemy.orm import Session

from rules.language.model import RuleSet
from server.read.audit_views import LanDeviceRow, LanPortRow, LanSection
from server.read.lan import HostLan, HostReport, LanDevice, lan_of_reports, merge_agency
from server.storage.fact_load import load_envelopes

LAN_PACK = "lan-discovery"
_CHUNK = 500  # ids per IN (...) list: far below every database's parameter limit


def risky_ports(ruleset: RuleSet) -> dict[int, str]:
    """TCP port -> the id of the lan-discovery rule that judges it (the first one)."""
    found: dict[int, str] = {}
    for rule in ruleset.rules:
        ports = rule.params.get("ports") if rule.pack_id == LAN_PACK else None
        for port in ports if isinstance(ports, (list, tuple)) else ():  # the loader: tuples
            if isinstance(port, int) and not isinstance(port, bool):
                found.setdefault(port, rule.id)
    return found


def _row(device: LanDevice, risky: Mapping[int, str]) -> LanDeviceRow:
    return LanDeviceRow(
        ips=list(device.ips),
        mac=device.mac,
        vendor=device.vendor,
        ports=[
            LanPortRow(
                port=p.port,
                protocol=p.protocol,
                service=p.service,
                risky_rule=risky.get(p.port) if p.protocol == "tcp" else None,
            )
            for p in device.ports
        ],
        first_seen=device.first_seen,
        last_seen=device.last_seen,
        seen_by=sorted({s.host for s in device.seen_by}),
    )


def lan_sections(
    session: Session,
    ruleset: RuleSet,
    hosts: Iterable[tuple[str, str, str, int, datetime]],
) -> dict[str, LanSection]:
    """agency -> its LAN section, for every agency with a host in `hosts`:
    (agent id, agency, label, report pk, collected at) of each host the audit counts."""
    reports = [HostReport(*h) for h in hosts]
    failed = _failed_sweeps(session, [r.report_pk for r in reports if r.report_pk is not None])
    failed_of: dict[str, list[str]] = defaultdict(list)
    for r in reports:
        if r.report_pk in failed:
            failed_of[r.agency].append(r.label)
    by_agency: dict[str, list[HostLan]] = defaultdict(list)
    for found in lan_of_reports(session, reports):
        by_agency[found.agency].append(found)
    risky = risky_ports(ruleset)
    return {
        agency: _section(agency, lans, risky, sorted(failed_of[agency]))
        for agency, lans in by_agency.items()
    }


def _failed_sweeps(session: Session, report_pks: list[int]) -> set[int]:
    """The reports whose envelope has an `errors` entry for the discovery domain: the
    agent tried to sweep and could not (unknown, never an empty LAN)."""
    found: set[int] = set()
    for start in range(0, len(report_pks), _CHUNK):
        envelopes = load_envelopes(session, report_pks[start : start + _CHUNK])
        for pk, envelope in envelopes.items():
            errors = envelope.get("errors")
            for error in errors if isinstance(errors, list) else ():
                if isinstance(error, dict) and error.get("domain") == "discovery":
                    found.add(pk)
    return found


def not_assessed(failed_sweeps: list[str] | None = None) -> LanSection:
    """An agency with no host counted, or none that swept."""
    return LanSection(
        assessed=False,
        sweeping_hosts=[],
        failed_sweeps=failed_sweeps or [],
        devices=None,
        managed=None,
        unmanaged=None,
        risky_unmanaged=None,
        unmanaged_devices=[],
    )


def _section(
    agency: str, lans: list[HostLan], risky: Mapping[int, str], failed: list[str]
) -> LanSection:
    sweeping = sorted(h.label for h in lans if h.sightings is not None)
    if not sweeping:
        return not_assessed(failed)
    devices = merge_agency(agency, lans)
    rows = [_row(d, risky) for d in devices if not d.managed]
    return LanSection(
        assessed=True,
        sweeping_hosts=sweeping,
        failed_sweeps=failed,
        devices=len(devices),
        managed=len(devices) - len(rows),
        unmanaged=len(rows),
        risky_unmanaged=sum(1 for r in rows if any(p.risky_rule for p in r.ports)),
        unmanaged_devices=rows,
    )
