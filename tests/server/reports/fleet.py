"""A small province on a real database, filled through the ingest service, and the
audit policy over it: the data the audit tests read.

Timeline (collected_at): T1 web01 (so-a) exposes telnet, db01 (so-a) and app01
(so-b) are clean, evil (so-x) has a hostile hostname and process name; T2 web01 is
clean again and new01 (so-b) exposes telnet. BETWEEN is a cut-off between the two.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from server.auth.enrolment import add_agency
from server.clock import utc_now
from server.config import ServerConfig
from server.evaluation.loaded_policy import ServerPolicy, load_server_policy
from server.ingest.service import IngestService, limits_of
from server.read.audit import AuditPolicy
from server.storage.database import Database
from tests.server.helpers import RULES_DIR, body_of, make_facts, new_token, telnet

FRAMEWORK = Path(__file__).resolve().parent / "data" / "test-framework.yaml"
WAIVERS = Path(__file__).resolve().parent / "data" / "waivers.yaml"
T1 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
BETWEEN = datetime(2026, 3, 2, 0, 0, tzinfo=UTC)
T2 = datetime(2026, 3, 5, 8, 0, tzinfo=UTC)
AFTER = datetime(2026, 3, 6, 0, 0, tzinfo=UTC)
# Markup, a formula, a right-to-left override and a control character: all must stay inert.
HOSTILE_HOST = '=HYPERLINK("http://x")<script>alert("h")</script>\u202eevil\x07'
HOSTILE_PROCESS = "=cmd|' /C calc'!A0<img src=x onerror=alert(1)>"


# db01's certificates: one expires 30 days after T1 (reported), one in a year (not).
def _certificate(location: str, subject: str, not_after: str) -> dict[str, Any]:
    return {
        "location": location,
        "source": "file",
        "path": location.split("#", maxsplit=1)[0],
        "chain_position": 0,
        "subject": subject,
        "issuer": "CN=ca",
        "serial": "01",
        "not_before": "2025-03-01T08:00:00Z",
        "not_after": not_after,
        "days_left": 0,
        "key_type": "RSA",
        "signature_algorithm": "sha256WithRSAEncryption",
        "self_signed": False,
        "is_ca": False,
        "fingerprint_sha256": "a" * 64,
    }


CERTIFICATES = [
    _certificate("/etc/ssl/db.pem#0", "CN=db01.so-a.gov.vn", "2026-03-31T08:00:00Z"),
    _certificate("/etc/ssl/ca.pem#0", "CN=ca", "2027-03-01T08:00:00Z"),
]
UPDATES = {
    "manager": "apt",
    "pending": [
        {
            "name": "openssl",
            "current_version": "3.0.11-1",
            "candidate_version": "3.0.13-1",
            "architecture": "amd64",
            "security": True,
            "first_seen_at": "2026-02-20T08:00:00Z",
            "pending_days": 9.0,
        }
    ],
    "pending_count": 1,
    "security_count": 1,
    "running_kernel": "6.1.0-18-amd64",
    "reboot_required": True,
}
NAMES = {"so-a": "Sở Thông tin và Truyền thông", "so-b": "Sở Y tế", "so-x": "Sở <b>Thử</b>"}


def server_policy() -> ServerPolicy:
    return load_server_policy(
        ServerConfig(rules=(RULES_DIR,), frameworks=(FRAMEWORK,), waivers=(WAIVERS,))
    )


def audit_policy(policy: ServerPolicy) -> AuditPolicy:
    return AuditPolicy.of(policy.policy, policy.fingerprint, policy.weights)


class Fleet:
    def __init__(self, database: Database, policy: ServerPolicy, db_url: str) -> None:
        self.service = IngestService(database, policy, limits_of(ServerConfig(db_url=db_url)))
        self.database = database
        self.tokens: dict[str, str] = {}
        self.seq: dict[str, int] = {}
        with database.write() as session:
            for agency, name in NAMES.items():
                add_agency(session, agency, name, utc_now)

    def report(self, agency: str, agent_id: str, hostname: str, **facts: Any) -> None:
        if agent_id not in self.tokens:
            self.tokens[agent_id] = new_token(self.database, agency)
        self.seq[agent_id] = self.seq.get(agent_id, 0) + 1
        document = make_facts(agent_id=agent_id, hostname=hostname, seq=self.seq[agent_id], **facts)
        credential = self.service.authenticate(self.tokens[agent_id])
        self.service.ingest(credential, body_of(document), None)

    def first_period(self) -> None:
        self.report("so-a", "agent-web", "web01", collected_at=T1, listening=[telnet()])
        self.report(
            "so-a",
            "agent-db",
            "db01",
            collected_at=T1,
            listening=[telnet("127.0.0.1")],  # loopback: not exposed
            certificates=CERTIFICATES,
            updates=UPDATES,
            errors=[],
        )
        denied = {"domain": "updates", "kind": "permission", "reason": "apt: Permission denied"}
        self.report("so-b", "agent-app", "app01", collected_at=T1, errors=[denied])
        evil = telnet() | {"process": HOSTILE_PROCESS}
        self.report("so-x", "agent-evil", HOSTILE_HOST, collected_at=T1, listening=[evil])

    def second_period(self) -> None:
        self.report("so-a", "agent-web", "web01", collected_at=T2)
        self.report("so-b", "agent-new", "new01", collected_at=T2, listening=[telnet()])
