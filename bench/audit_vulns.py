"""Benchmark: what the vulnerability section costs an audit.

A fresh SQLite database is filled through the real ingest service with AGENCIES x
HOSTS hosts, each one report of the facts recorded on a Debian 12 machine (920
packages; every third host with a different openssl version, so the matcher's
per-version sharing is not the whole story), judged by the vulnerabilities pack
against the feed samples of tests/data/server/vulns. Then the province audit model is
built with the section (every host's packages loaded and matched) and, as the
baseline in the same run, without it (no store given to the audit): medians over
REPEAT runs and the ratio. The feed samples are small: matching against a full
Debian tracker is measured by bench/vulndb.py.

    python bench/audit_vulns.py [--agencies 5] [--hosts 50] [--repeat 3]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from figures import median_seconds, record  # noqa: E402

from rules.language.loader import builtin_packs_dir  # noqa: E402
from server.auth.agent_tokens import create_token  # noqa: E402
from server.clock import utc_now  # noqa: E402
from server.config import ServerConfig  # noqa: E402
from server.evaluation.loaded_policy import load_server_policy  # noqa: E402
from server.ingest.service import IngestService, limits_of  # noqa: E402
from server.read.audit import AuditPolicy, build_audit  # noqa: E402
from server.storage.database import open_database  # noqa: E402
from server.storage.migrate import upgrade  # noqa: E402
from tests.server.helpers import body_of, iso  # noqa: E402
from tests.server.vulns.conftest import import_samples, recorded_facts, with_kernels  # noqa: E402

COLLECTED = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--agencies", type=int, default=5)
    parser.add_argument("--hosts", type=int, default=50)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        store = Path(directory) / "vulndb.sqlite"
        import_samples(store, ("debian-tracker.json", "kev.json", "epss.csv"))
        url = f"sqlite:///{directory}/canhgac.db"
        upgrade(url)
        database = open_database(url)
        pack = builtin_packs_dir() / "vulnerabilities.yaml"
        config = ServerConfig(db_url=url, rules=(pack,), vulndb_path=store)
        policy = load_server_policy(config)
        service = IngestService(database, policy, limits_of(config), clock=lambda: COLLECTED)
        started = time.perf_counter()
        for a in range(args.agencies):
            for h in range(args.hosts):
                with database.write() as session:
                    _, token = create_token(session, f"so-{a:02d}", None, utc_now)
                facts = with_kernels(recorded_facts())
                facts["host"]["hostname"] = f"host-{a}-{h}"
                if h % 3 == 0:
                    for item in facts["packages"]["items"]:
                        if item.get("source") == "openssl":
                            item["version"] = item["source_version"] = "3.0.23-1~deb12u1"
                facts.update(
                    agent_id=f"agent-{a}-{h}",
                    seq=1,
                    collected_at=iso(COLLECTED - timedelta(minutes=h)),
                    report_id=f"00000000-0000-4000-8000-{a:06d}{h:06d}",
                )
                service.ingest(service.authenticate(token), body_of(facts), None)
        hosts = args.agencies * args.hosts
        print(f"filled {hosts} hosts in {time.perf_counter() - started:.1f} s")
        with_section = AuditPolicy.of(
            policy.policy, policy.fingerprint, policy.weights, policy.vulns
        )
        without = replace(with_section, vulns=None)

        def build(judged: AuditPolicy) -> Callable[[], object]:
            def work() -> object:
                with database.session() as session:
                    return build_audit(
                        session,
                        judged,
                        as_of=COLLECTED + timedelta(days=1),
                        agency=None,
                        stale_after_seconds=86400,
                    )

            return work

        base = median_seconds(build(without), args.repeat)
        record(f"province audit model, {hosts} hosts, no vulnerability section", base, "s")
        seconds = median_seconds(build(with_section), args.repeat)
        record(
            f"province audit model, {hosts} hosts, with the vulnerability section",
            seconds,
            "s",
            baseline=base,
            baseline_name="without the section",
        )
        database.dispose()


if __name__ == "__main__":
    main()
