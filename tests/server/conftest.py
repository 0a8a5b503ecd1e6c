"""Fixtures of the collector's tests: a real migrated database, rules, tokens, a live server.

`db_url` is the one place that names the database: every test that uses it (directly
or through `database`, `service`, `live_server`...) runs twice, on a SQLite file and
on a fresh PostgreSQL database (see `tests/server/pg.py`). Tests of SQLite-only
behaviour take `sqlite_url` / `sqlite_database` instead.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
import uvicorn

from rules.language.loader import load_rules
from rules.language.model import RuleSet
from server.api import create_app
from server.config import ServerConfig
from server.evaluation.loaded_policy import ServerPolicy, load_server_policy
from server.ingest.service import IngestService, limits_of
from server.metrics.hoststate import HostStateCache
from server.storage.database import Database, open_database
from server.storage.migrate import upgrade
from tests.server import pg
from tests.server.helpers import RULES_DIR, new_token
from tests.support import free_port

# The fixture: every test taking `db_url` runs on SQLite and on PostgreSQL.
db_url = pg.db_url
LIVE_MAX_BODY = 2 * 1024 * 1024  # above a 1 GiB gzip bomb (~1 MiB), small enough to exceed


@pytest.fixture
def sqlite_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    return f"sqlite:///{tmp_path_factory.mktemp('db') / 'canhgac.db'}"


@pytest.fixture
def sqlite_database(sqlite_url: str) -> Iterator[Database]:
    upgrade(sqlite_url)
    database = open_database(sqlite_url)
    yield database
    database.dispose()


@pytest.fixture
def database(db_url: str) -> Iterator[Database]:
    upgrade(db_url)
    database = open_database(db_url)
    yield database
    database.dispose()


@pytest.fixture(scope="session")
def ruleset() -> RuleSet:
    return load_rules([RULES_DIR])


@pytest.fixture(scope="session")
def policy() -> ServerPolicy:
    return load_server_policy(ServerConfig(rules=(RULES_DIR,)))


@pytest.fixture
def token(database: Database) -> str:
    return new_token(database)


@pytest.fixture
def config(db_url: str) -> ServerConfig:
    return ServerConfig(db_url=db_url)


@pytest.fixture
def cache() -> HostStateCache:
    return HostStateCache()


@pytest.fixture
def service(
    database: Database, policy: ServerPolicy, config: ServerConfig, cache: HostStateCache
) -> IngestService:
    return IngestService(database, policy, limits_of(config), on_commit=cache.put)


@dataclass
class LiveServer:
    url: str
    database: Database
    config: ServerConfig
    app: Any = None

    @property
    def reports_url(self) -> str:
        return f"{self.url}/api/v1/reports"


class LiveServers:
    """Starts the real app under uvicorn, in a thread, on free loopback ports.

    `start()` takes the app's constructor options (`policy`, `policy_loader`) and
    `ServerConfig` fields over the defaults below, so a test gets the server it needs
    instead of editing a running one's internals.
    """

    def __init__(self, database: Database, policy: ServerPolicy, db_url: str) -> None:
        self.database = database
        self.policy = policy
        self.db_url = db_url
        self._running: list[tuple[uvicorn.Server, threading.Thread]] = []

    def start(
        self,
        *,
        policy: ServerPolicy | None = None,
        policy_loader: Callable[[], ServerPolicy] | None = None,
        **config: Any,
    ) -> LiveServer:
        settings: dict[str, Any] = {
            "db_url": self.db_url,
            "rules": (RULES_DIR,),
            "max_body_bytes": LIVE_MAX_BODY,
            "metrics_refresh_seconds": 0.2,
            "agent_rate_burst": 1000,
            **config,
        }
        server_config = ServerConfig(**settings)
        app = create_app(
            server_config,
            self.database,
            policy if policy is not None else self.policy,
            policy_loader=policy_loader,
        )
        port = free_port()
        server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
        )
        thread = threading.Thread(target=server.run, name="uvicorn", daemon=True)
        thread.start()
        self._running.append((server, thread))
        deadline = time.monotonic() + 15
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                pytest.fail("the collector did not start")
            time.sleep(0.02)
        return LiveServer(f"http://127.0.0.1:{port}", self.database, server_config, app)

    def stop_all(self) -> None:
        for server, _ in self._running:
            server.should_exit = True
        for _, thread in self._running:
            thread.join(timeout=15)


@pytest.fixture
def live_servers(database: Database, policy: ServerPolicy, db_url: str) -> Iterator[LiveServers]:
    """Real apps on this test's database, started with `start(...)`, stopped at the end."""
    servers = LiveServers(database, policy, db_url)
    try:
        yield servers
    finally:
        servers.stop_all()


@pytest.fixture
def live_server(live_servers: LiveServers) -> LiveServer:
    """The real app under uvicorn, on a free loopback port, in a thread."""
    return live_servers.start()


@pytest.fixture
def fixed_now() -> datetime:
    return datetime(2026, 11, 27, 8, 0, tzinfo=UTC)
