"""The agent daemon against a real collector, both real processes on loopback.

`canhgac-agent run --interval 2s` collects this machine for real and ships through its
spool to `canhgac-server serve` on SQLite; the test stops and restarts the collector
(same port), SIGKILLs the agent, fills its spool, makes its spool read-only and makes
the collector refuse reports, and checks what the collector's database holds.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import select

from server.storage.database import open_database
from server.storage.fact_load import load_envelopes
from server.storage.models import Report
from tests.agent.delivery.fulldisk import full_directory
from tests.agent.delivery.readonly import read_only_directory
from tests.collector_process import SERVER, CollectorProcess
from tests.support import free_port

from .conftest import BIN, create_token

INTERVAL = "2s"
AGENCY = "so-daemon-e2e"


class Collector:
    """`canhgac-server serve` on one fixed port, stopped and started again at will."""

    def __init__(self, directory: Path, *extra: str) -> None:
        self.directory = directory
        self.db = directory / "canhgac.db"
        self.db_url = f"sqlite:///{self.db}"
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.extra = extra
        self.current: CollectorProcess | None = None
        self.starts = 0

    def start(self) -> None:
        self.starts += 1
        log_path = self.directory / f"collector-{self.starts}.log"
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                [
                    str(SERVER),
                    "serve",
                    "--listen",
                    f"127.0.0.1:{self.port}",
                    "--db",
                    self.db_url,
                    *self.extra,
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        self.current = CollectorProcess(self.url, self.port, process, log_path)
        self.current.wait_healthy()

    def stop(self) -> None:
        if self.current is not None:
            self.current.stop()
            self.current = None

    def reports(self) -> list[tuple[int, str, dict[str, object]]]:
        """(seq, report_id, envelope) of every stored report, in the order stored; the
        envelope read through the storage's own reader (the row alone does not hold it)."""
        database = open_database(self.db_url)
        try:
            with database.session() as session:
                rows = session.execute(
                    select(Report.id, Report.seq, Report.report_id).order_by(Report.id)
                ).all()
                envelopes = load_envelopes(session, [pk for pk, _, _ in rows])
        finally:
            database.engine.dispose()
        return [(int(seq), str(rid), envelopes[pk]) for pk, seq, rid in rows]


@pytest.fixture
def collector(tmp_path: Path) -> Iterator[Collector]:
    served = Collector(tmp_path)
    served.start()
    try:
        yield served
    finally:
        served.stop()


class Agent:
    def __init__(self, directory: Path, collector: Collector, config: str = "") -> None:
        self.directory = directory
        self.state = directory / "agent-state"
        self.token_file = create_token(collector.db_url, AGENCY, directory)
        self.config = directory / "agent.yaml"
        # Listener probing is off: the test's speed should not depend on what else
        # listens on this machine; the rest of the collection is the real one.
        self.config.write_text(
            f"agent:\n  server: {collector.url}\n  probe_listeners: false\n{config}"
        )
        self.process: subprocess.Popen[bytes] | None = None
        self.runs = 0

    @property
    def spool(self) -> Path:
        return self.state / "spool"

    def start(self, *extra: str) -> None:
        self.runs += 1
        log = (self.directory / f"agent-{self.runs}.log").open("wb")
        self.process = subprocess.Popen(
            [
                str(BIN / "canhgac-agent"),
                "run",
                "--interval",
                INTERVAL,
                "--log-format",
                "json",
                "--config",
                str(self.config),
                "--token-file",
                str(self.token_file),
                "--state-dir",
                str(self.state),
                "--lang",
                "en",
                *extra,
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()

    def stop(self) -> int:
        """SIGTERM, once this run's daemon has said it started: a SIGTERM that comes
        before it installs its handlers ends the process by the default action (-15),
        which is correct for a daemon still starting but not what these tests stop."""
        assert self.process is not None
        wait_for(self.started, 30, "the daemon to start")
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=40)

    def started(self) -> bool:
        """True once this run's daemon has logged that it started."""
        text = (self.directory / f"agent-{self.runs}.log").read_text()
        # only whole lines: the last one may still be being written
        lines = [line for line in text.split("\n")[:-1] if line.startswith("{")]
        return any(json.loads(line).get("event") == "started" for line in lines)

    def events(self) -> list[dict[str, object]]:
        lines: list[dict[str, object]] = []
        for n in range(1, self.runs + 1):
            text = (self.directory / f"agent-{n}.log").read_text()
            lines += [json.loads(line) for line in text.splitlines() if line.strip()]
        return lines

    def spooled(self) -> list[str]:
        return sorted(p.name for p in self.spool.glob("*.json.gz")) if self.spool.is_dir() else []


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def assert_exactly_once_in_order(stored: list[tuple[int, str, dict[str, object]]]) -> None:
    seqs = [seq for seq, _, _ in stored]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs), seqs
    assert len({rid for _, rid, _ in stored}) == len(stored)


@contextmanager
def running(agent: Agent, *extra: str) -> Iterator[Agent]:
    agent.start(*extra)
    try:
        yield agent
    finally:
        if agent.process is not None and agent.process.poll() is None:
            agent.process.kill()
            agent.process.wait()


def test_outage_of_many_cycles_then_every_report_once_in_order(
    collector: Collector, tmp_path: Path
) -> None:
    agent = Agent(tmp_path, collector)
    with running(agent):
        wait_for(lambda: len(collector.reports()) >= 2, 60, "the first reports")
        collector.stop()
        wait_for(lambda: len(agent.spooled()) >= 5, 60, "five cycles spooled during the outage")
        kept = agent.spooled()
        collector.start()
        wait_for(lambda: agent.spooled() == [], 60, "the spool to drain")
        wait_for(lambda: len(collector.reports()) >= 8, 60, "cycles after the outage")
        assert agent.stop() == 0
    stored = collector.reports()
    assert_exactly_once_in_order(stored)
    # every report spooled during the outage reached the collector, in seq order
    seqs = [seq for seq, _, _ in stored]
    assert seqs == list(range(1, len(seqs) + 1))
    ids = {rid for _, rid, _ in stored}
    assert all(name.split("-", 1)[1].removesuffix(".json.gz") in ids for name in kept)
    events = [e["event"] for e in agent.events()]
    assert "not_delivered" in events and "kept" in events and events[-1] == "stopping"


def test_sigkill_at_random_moments_loses_and_duplicates_nothing(
    collector: Collector, tmp_path: Path
) -> None:
    agent = Agent(tmp_path, collector)
    on_disk: set[str] = set()
    for _ in range(5):
        with running(agent):
            # kill as soon as a spool write is under way, else at a random moment
            deadline = time.monotonic() + 3 + (time.monotonic_ns() % 3000) / 1000
            while time.monotonic() < deadline:
                if agent.spool.is_dir() and any(agent.spool.glob(".tmp-*")):
                    break
                time.sleep(0.001)
            assert agent.process is not None
            agent.process.kill()
            agent.process.wait()
            on_disk |= set(agent.spooled())
    before = len(collector.reports())
    with running(agent):
        wait_for(lambda: agent.spooled() == [], 60, "the spool to drain after the kills")
        # at least one cycle of this run, so put and drain ran after the kills too
        wait_for(lambda: len(collector.reports()) > before, 60, "a report of the last run")
        assert agent.stop() == 0
    stored = collector.reports()
    assert_exactly_once_in_order(stored)
    ids = {rid for _, rid, _ in stored}
    lost = [n for n in on_disk if n.split("-", 1)[1].removesuffix(".json.gz") not in ids]
    assert lost == []
    assert list(agent.spool.glob(".tmp-*")) == []


def test_full_spool_drops_the_oldest_and_the_count_arrives(
    collector: Collector, tmp_path: Path
) -> None:
    agent = Agent(tmp_path, collector, "  spool_max_reports: 2\n")
    with running(agent):
        wait_for(lambda: len(collector.reports()) >= 1, 60, "the first report")
        collector.stop()
        wait_for(
            lambda: any(e["event"] == "dropped" for e in agent.events()), 60, "a dropped report"
        )
        wait_for(lambda: len(agent.spooled()) == 2, 30, "a full spool")
        collector.start()
        wait_for(lambda: agent.spooled() == [], 60, "the spool to drain")
        assert agent.stop() == 0
    stored = collector.reports()
    assert_exactly_once_in_order(stored)
    seqs = [seq for seq, _, _ in stored]
    missing = max(seqs) - len(seqs)  # seqs start at 1: the gaps are the dropped reports
    told = sum(int(str(env.get("spool_dropped_reports", 0))) for _, _, env in stored)
    assert missing > 0 and told == missing
    first_told = next(seq for seq, _, env in stored if "spool_dropped_reports" in env)
    assert first_told > min(seqs)


def test_read_only_spool_keeps_collecting_and_delivering(
    collector: Collector, tmp_path: Path
) -> None:
    agent = Agent(tmp_path, collector)
    with read_only_directory(agent.spool), running(agent):
        wait_for(lambda: len(collector.reports()) >= 2, 60, "reports sent without the spool")
        assert agent.stop() == 0
    errors = [e for e in agent.events() if e["event"] == "spool_error"]
    assert errors and "cannot" in str(errors[0]["message"])
    assert_exactly_once_in_order(collector.reports())


def test_full_spool_disk_keeps_collecting_and_delivering(
    collector: Collector, tmp_path: Path
) -> None:
    agent = Agent(tmp_path, collector)
    with full_directory(agent.spool), running(agent):
        wait_for(lambda: len(collector.reports()) >= 2, 60, "reports sent without the spool")
        assert agent.stop() == 0
    errors = [e for e in agent.events() if e["event"] == "spool_error"]
    assert errors and "No space left on device" in str(errors[0]["message"])
    assert_exactly_once_in_order(collector.reports())


def test_permanent_refusal_is_quarantined_not_retried(tmp_path: Path) -> None:
    server_config = tmp_path / "server.yaml"
    server_config.write_text("server:\n  max_list_items: 3\n")
    collector = Collector(tmp_path, "--config", str(server_config))
    collector.start()
    try:
        agent = Agent(tmp_path, collector)
        with running(agent):
            wait_for(
                lambda: len(list((agent.spool / "quarantine").glob("*.json.gz"))) >= 2,
                60,
                "two quarantined reports",
            )
            assert agent.stop() == 0
    finally:
        collector.stop()
    answers = list((agent.spool / "quarantine").glob("*.answer.txt"))
    assert answers and "HTTP 4" in answers[0].read_text()
    assert collector.reports() == []
    assert agent.spooled() == []


def test_sighup_reloads_and_a_bad_config_is_kept_out(collector: Collector, tmp_path: Path) -> None:
    agent = Agent(tmp_path, collector)
    with running(agent):
        wait_for(lambda: len(collector.reports()) >= 1, 60, "the first report")
        good = agent.config.read_text()
        agent.config.write_text(good + "  interval: soon\n")
        assert agent.process is not None
        agent.process.send_signal(signal.SIGHUP)
        wait_for(lambda: any(e["event"] == "reload_failed" for e in agent.events()), 20, "reload")
        count = len(collector.reports())
        wait_for(lambda: len(collector.reports()) > count, 30, "cycles after a bad reload")
        assert agent.stop() == 0
    (failed,) = [e for e in agent.events() if e["event"] == "reload_failed"]
    assert "agent.interval" in str(failed["message"])
    assert os.path.exists(agent.config)


def test_enroll_and_run_agree_on_token_file(collector: Collector, tmp_path: Path) -> None:
    """Following config.example.yaml: `token_file` set, `enroll`, then `run --once`."""

    def cli(*argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*argv, "--db", collector.db_url] if argv[0].endswith("server") else list(argv),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    server = str(BIN / "canhgac-server")
    assert cli(server, "agency", "add", AGENCY, "--name", "Sở").returncode == 0
    secret = cli(server, "agency", "enrol-secret", AGENCY).stdout.strip().splitlines()[-1]
    (tmp_path / "secret").write_text(secret + "\n")
    token_file = tmp_path / "etc" / "agent.token"
    token_file.parent.mkdir()
    config = tmp_path / "agent.yaml"
    config.write_text(
        f"agent:\n  server: {collector.url}\n  token_file: {token_file}\n"
        f"  state_dir: {tmp_path / 'state'}\n  probe_listeners: false\n"
    )
    agent = str(BIN / "canhgac-agent")
    enrolled = cli(
        agent, "enroll", "--config", str(config), "--secret-file", str(tmp_path / "secret")
    )
    assert enrolled.returncode == 0, enrolled.stderr
    assert token_file.read_text().startswith("cgt_")
    assert not (tmp_path / "state" / "agent.token").exists()
    shipped = cli(agent, "run", "--once", "--config", str(config), "--lang", "en")
    assert shipped.returncode == 0, shipped.stderr
    assert "accepted" in shipped.stdout
    assert [seq for seq, _, _ in collector.reports()] == [1]


def test_sigterm_stops_idle_and_busy_daemons_within_the_bound(
    collector: Collector, tmp_path: Path
) -> None:
    agent = Agent(tmp_path, collector)
    with running(agent, "--interval", "1h"):
        wait_for(lambda: len(collector.reports()) == 1, 60, "the first report")
        started = time.monotonic()
        assert agent.stop() == 0
        idle_stop = time.monotonic() - started
    assert idle_stop < 2.0
    with running(agent):
        # busy: stopped while the first cycle collects (the first cycle starts within 2 s)
        wait_for(lambda: any(e["event"] == "started" for e in agent.events()), 30, "start")
        time.sleep(2.5)
        started = time.monotonic()
        assert agent.stop() == 0
        busy_stop = time.monotonic() - started
    assert busy_stop < 20.0 + 2.0  # STOP_GRACE_SECONDS and the process exit
    assert agent.events()[-1]["event"] in ("stopping", "abandoned")
    assert_exactly_once_in_order(collector.reports())
