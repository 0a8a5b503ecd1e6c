"""Benchmark: audit package generation for a synthetic province, per format.

A fresh SQLite database is filled through the real ingest service (no HTTP: the
fleet is what is measured, not the transport) with AGENCIES x HOSTS hosts, each one
report whose listeners expose telnet on FINDINGS addresses (one finding each) on
two hosts out of three. Then, for one agency (so-000) and for the province, it
prints the median time over REPEAT runs and the Python heap peak (tracemalloc, in
one separate untimed run) of each format end to end, from the database to the
document's bytes: `whole` (the whole model built, then rendered) and `streamed`
(the outline, then the document written as the findings and hosts are read).
The baseline, measured in the same run, is the whole model and its plain JSON dump
(`json.dumps(model.model_dump())`): every format is shown as a ratio to it. The PDF
(with --pdf) has its own baseline, also measured in the same run: the same model
printed with every finding and host (what the PDF held before the printed document
listed the first `PDF_DETAIL_ROWS` of each and summed up the rest).

    python bench/audit_report.py [--agencies 10] [--hosts 50] [--findings 5] [--repeat 3] [--pdf]
                                 [--db var/bench-audit.db] [--fill-only] [--streamed-only]
                                 [--province-only]

A large fleet takes minutes to fill through the ingest service (about 30 ms a host
on the shared development machine): `--db FILE` keeps the filled SQLite database at
FILE and reuses it when it already holds the same fleet (agencies x hosts), so the
province of 50,000 hosts is filled once; `--fill-only` stops after the fill.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from figures import record  # noqa: E402

from server.auth.agent_tokens import create_token  # noqa: E402
from server.auth.enrolment import add_agency  # noqa: E402
from server.clock import utc_now  # noqa: E402
from server.config import ServerConfig  # noqa: E402
from server.evaluation.loaded_policy import load_server_policy  # noqa: E402
from server.ingest.service import IngestService, limits_of  # noqa: E402
from server.read.audit import AuditPolicy, audit_outline, build_audit  # noqa: E402
from server.read.audit_views import AuditReport  # noqa: E402
from server.reports.html import render_html  # noqa: E402
from server.reports.pdf import html_to_pdf  # noqa: E402
from server.reports.render import Format, render_audit, stream_audit  # noqa: E402
from server.reports.text import Lang  # noqa: E402
from server.storage.database import Database, open_database  # noqa: E402
from server.storage.migrate import upgrade  # noqa: E402
from server.storage.models import Agency, Host  # noqa: E402
from tests.server.helpers import RULES_DIR, body_of, make_facts, telnet  # noqa: E402
from tests.server.reports.fleet import FRAMEWORK  # noqa: E402

COLLECTED = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)


def audit_policy(url: str) -> AuditPolicy:
    policy = load_server_policy(_config(url))
    return AuditPolicy.of(policy.policy, policy.fingerprint, policy.weights)


def _config(url: str) -> ServerConfig:
    return ServerConfig(db_url=url, rules=(RULES_DIR,), frameworks=(FRAMEWORK,))


def fill(database: Database, url: str, agencies: int, hosts: int, findings: int) -> AuditPolicy:
    config = _config(url)
    policy = load_server_policy(config)
    service = IngestService(database, policy, limits_of(config))
    started = time.perf_counter()
    for a in range(agencies):
        agency = f"so-{a:03d}"
        with database.write() as session:
            add_agency(session, agency, f"Sở số {a}", utc_now)
        for h in range(hosts):
            with database.write() as session:
                _, token = create_token(session, agency, None, utc_now)
            exposed = findings if (a + h) % 3 else 0  # a third of the hosts are clean
            listening = [telnet(f"10.{a % 250}.{h % 250}.{i + 1}") for i in range(exposed)]
            facts = make_facts(
                agent_id=f"agent-{a}-{h}",
                hostname=f"host-{h:04d}",
                collected_at=COLLECTED - timedelta(minutes=h),
                listening=listening,
            )
            service.ingest(service.authenticate(token), body_of(facts), None)
    total = agencies * hosts
    print(f"filled {total} hosts in {time.perf_counter() - started:.1f} s")
    return AuditPolicy.of(policy.policy, policy.fingerprint, policy.weights)


def measure(work: Callable[[], Any], repeat: int) -> tuple[float, float, Any]:
    """(median seconds over `repeat` plain runs, peak MiB of the Python heap in one
    more run under tracemalloc, the result). Timed runs are not traced: tracing
    slows Python code several times over."""
    times = []
    result: Any = None
    for _ in range(repeat):
        started = time.perf_counter()
        result = work()
        times.append(time.perf_counter() - started)
    tracemalloc.start()
    work()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return statistics.median(times), peak / 2**20, result


def bench(database: Database, policy: AuditPolicy, agency: str | None, args: Any) -> None:
    """End to end, from the database to the document's bytes, for each format:
    `whole` builds the whole model then renders it (what the command did before the
    documents streamed), `streamed` reads the outline and writes the document as the
    detail is read (what the command and the API do); the baseline is the whole
    model and `json.dumps` of it."""
    label = agency or "province"
    as_of = COLLECTED + timedelta(days=1)

    def whole_model() -> AuditReport:
        with database.session() as session:
            return build_audit(
                session, policy, as_of=as_of, agency=agency, stale_after_seconds=86400
            )

    def baseline() -> int:
        return len(json.dumps(whole_model().model_dump(mode="json")).encode())

    def whole(fmt: Format) -> int:
        return len(render_audit(whole_model(), fmt, Lang.VI))

    def streamed(fmt: Format) -> int:
        with database.session() as session:
            outline, detail = audit_outline(
                session, policy, as_of=as_of, agency=agency, stale_after_seconds=86400
            )
            # Counted, not kept: the bytes would go to a file or a socket.
            return sum(len(chunk) for chunk in stream_audit(outline, fmt, Lang.VI, detail))

    report = whole_model()
    count = sum(len(a.findings) for a in report.agencies)
    hosts = sum(len(a.hosts) for a in report.agencies)
    print(f"\n{label}: {len(report.agencies)} agencies, {hosts} hosts, {count} findings")
    del report
    base, base_peak, _size = measure(baseline, args.repeat)
    record(f"{label}: baseline whole model + json.dumps", base, "s")
    record(f"{label}: baseline whole model + json.dumps, peak", base_peak, "MiB")
    goals = {Format.HTML: "< 3 s (agency), < 60 s (province)"}
    for fmt in (Format.JSON, Format.CSV, Format.XLSX, Format.HTML):
        name = f"{label}: {fmt.value}"
        if not args.streamed_only:
            seconds, peak, _size = measure(partial(whole, fmt), args.repeat)
            record(f"{name} whole", seconds, "s", baseline=base, baseline_name="json.dumps")
            record(
                f"{name} whole, peak", peak, "MiB", baseline=base_peak, baseline_name="json.dumps"
            )
        seconds, peak, size = measure(partial(streamed, fmt), args.repeat)
        record(
            f"{name} streamed",
            seconds,
            "s",
            baseline=base,
            baseline_name="json.dumps",
            goal=goals.get(fmt, ""),
        )
        record(
            f"{name} streamed, peak", peak, "MiB", baseline=base_peak, baseline_name="json.dumps"
        )
        record(f"{name}, size", size, "bytes")
    if args.pdf:
        report = whole_model()
        # Once each: Chromium takes seconds to minutes, and its memory is not Python's.
        started = time.perf_counter()
        everything = html_to_pdf(render_html(report, Lang.VI))
        full = time.perf_counter() - started
        started = time.perf_counter()
        printed = render_audit(report, Format.PDF, Lang.VI)
        seconds = time.perf_counter() - started
        before = "every finding and host printed"
        record(f"{label}: pdf", seconds, "s", baseline=full, baseline_name=before)
        record(
            f"{label}: pdf, size",
            len(printed),
            "bytes",
            baseline=len(everything),
            baseline_name=before,
        )


def hosts_in(database: Database) -> tuple[int, int]:
    """(agencies, hosts) already stored: a kept database is reused only when whole."""
    with database.session() as session:
        agencies = session.scalar(select(func.count()).select_from(Agency)) or 0
        hosts = session.scalar(select(func.count()).select_from(Host)) or 0
    return agencies, hosts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agencies", type=int, default=10)
    parser.add_argument("--hosts", type=int, default=50, help="hosts per agency")
    parser.add_argument("--findings", type=int, default=5, help="per exposed host")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--pdf", action="store_true", help="also PDF (Chromium), once")
    parser.add_argument("--db", type=Path, help="keep (and reuse) the filled SQLite file")
    parser.add_argument("--fill-only", action="store_true", help="stop after the fill")
    parser.add_argument(
        "--streamed-only", action="store_true", help="skip the whole-model renderings"
    )
    parser.add_argument("--province-only", action="store_true", help="skip the one agency")
    parser.add_argument(
        "--as-stored", action="store_true", help="reuse --db whatever fleet it holds"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="canhgac-bench-audit-") as work:
        path = args.db or Path(work) / "bench.db"
        path.parent.mkdir(parents=True, exist_ok=True)
        url = f"sqlite:///{path}"
        upgrade(url)
        database = open_database(url)
        try:
            stored = hosts_in(database)
            if stored == (args.agencies, args.agencies * args.hosts) or (
                args.as_stored and stored[1]
            ):
                print(f"reusing {path}: {stored[1]} hosts")
                policy = audit_policy(url)
            elif stored != (0, 0):
                raise SystemExit(f"{path} holds another fleet {stored}: remove it")
            else:
                policy = fill(database, url, args.agencies, args.hosts, args.findings)
            if args.fill_only:
                return
            if not args.province_only:
                bench(database, policy, "so-000", args)
            bench(database, policy, None, args)
        finally:
            database.dispose()


if __name__ == "__main__":
    main()
