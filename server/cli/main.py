"""`canhgac-server`: the collector's command line (thin: parse, call, print).

Every subcommand takes `--config FILE` (its `server:` section) and `--db URL`; flags
win over the file. Errors of the collector are printed as one clear line, exit 1;
usage errors and invalid rule files exit 2. `-h` is `--help` everywhere.
Administration commands (token, agency, agent, api-token) are in `cli_admin`.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import errno
import os
import socket
import ssl
import sys
from pathlib import Path
from typing import Any

import click
import uvicorn

from rules.errors import RuleLoadError
from rules.tooling.cli import rules_group
from server.api import create_app
from server.api.connections import (
    BodyDeadline,
    ConnectionLimits,
    quiet_accept_errors,
    server_options,
    set_handshake_deadline,
)
from server.cli import admin as cli_admin
from server.cli.audit import audit as audit_command
from server.cli.common import CONTEXT, migrated, with_config
from server.cli.vulndb import vulndb as vulndb_command
from server.cli.workers import fork_workers
from server.clock import utc_now
from server.config import ServerConfig, is_loopback, parse_listen
from server.evaluation.loaded_policy import ServerPolicy, load_server_policy
from server.evaluation.reeval import Reevaluator, last_applied_fingerprint
from server.storage import migrate
from server.storage.database import open_database
from server.storage.retention import prune

STARTUP_FAILURE = 3  # uvicorn's exit code when the application could not start


@click.group(context_settings=CONTEXT)
@click.version_option(package_name="canhgac")
def main() -> None:
    """canhgac collector: receives agents' reports, keeps findings, serves metrics."""


# The shared `rules` group (validate, lint...) plus the collector's `reload`; a copy,
# so the agent's CLI, which mounts the same group, does not grow a `reload`.
server_rules = click.Group(
    "rules",
    commands=dict(rules_group.commands),
    help=rules_group.help,
    context_settings=CONTEXT,
)
main.add_command(server_rules)
cli_admin.register(main)
main.add_command(audit_command)
main.add_command(vulndb_command)


@main.command(context_settings=CONTEXT)
@with_config
@click.option("--listen", help="HOST:PORT to listen on (default 127.0.0.1:8450).")
@click.option(
    "--rules",
    "rule_paths",
    multiple=True,
    type=click.Path(exists=True, path_type=Path),
    help="Rule file or directory (repeatable; default: the built-in packs).",
)
@click.option("--tls-cert", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--tls-key", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--tls-client-ca",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="CA bundle of agents' client certificates: requires mutual TLS.",
)
@click.option(
    "--allow-plain-http",
    is_flag=True,
    default=None,
    help="Allow a non-loopback listen address without TLS (behind a TLS proxy).",
)
@click.option(
    "--no-migrate",
    is_flag=True,
    help="Do not migrate at start (run `db upgrade` as the deploy step); refuse an old schema.",
)
@click.option(
    "--log-level",
    type=click.Choice(["critical", "error", "warning", "info", "debug"]),
    default="info",
    show_default=True,
)
@click.option(
    "--header-timeout",
    type=click.FloatRange(min=0.1),
    default=ConnectionLimits.header_timeout,
    show_default=True,
    help="Seconds a client has to send a request's headers.",
)
@click.option(
    "--tls-handshake-timeout",
    type=click.FloatRange(min=0.1),
    default=ConnectionLimits.handshake_timeout,
    show_default=True,
    help="Seconds a client has to complete the TLS handshake.",
)
@click.option(
    "--body-timeout",
    type=click.FloatRange(min=0.1),
    default=ConnectionLimits.body_timeout,
    show_default=True,
    help="Seconds a client has to send a whole request body.",
)
@click.option(
    "--max-connections",
    type=click.IntRange(min=1),
    help="Open connections served at once (default: the file limit minus a reserve).",
)
@click.option(
    "--workers",
    type=click.IntRange(min=1, max=64),
    default=1,
    show_default=True,
    help="Worker processes serving the one socket (each a replica of the collector).",
)
def serve(
    *,
    config: ServerConfig,
    listen: str | None,
    rule_paths: tuple[Path, ...],
    tls_cert: Path | None,
    tls_key: Path | None,
    tls_client_ca: Path | None,
    allow_plain_http: bool | None,
    no_migrate: bool,
    log_level: str,
    header_timeout: float,
    tls_handshake_timeout: float,
    body_timeout: float,
    max_connections: int | None,
    workers: int,
) -> None:
    """Run the collector: migrate the database, load the policy, serve HTTP(S)."""
    config = config.with_overrides(
        listen=listen,
        rules=rule_paths or None,
        tls_cert=tls_cert,
        tls_key=tls_key,
        tls_client_ca=tls_client_ca,
        allow_plain_http=allow_plain_http,
    )
    host, port = parse_listen(config.listen)
    if not config.tls and not is_loopback(host) and not config.allow_plain_http:
        # Tokens and facts would cross the network in clear text.
        raise click.UsageError(
            f"refusing to serve plain HTTP on non-loopback address {host}: give --tls-cert"
            " and --tls-key, or put a TLS proxy in front and pass --allow-plain-http"
        )
    policy = load_policy_or_exit(config)
    # Bind before anything slow or noisy: a taken port is the commonest failure and
    # must be told plainly, before migrations and without a listening banner.
    listener = bind_listener(host, port)
    worker = 0
    if workers > 1:
        # Migrate once, before forking; each worker then opens its own engine.
        if not no_migrate:
            migrate.upgrade(config.database_url)
        no_migrate = True
        worker = fork_workers(workers)
    database = open_database(config.database_url)
    try:
        if no_migrate:
            migrate.require_head(config.database_url)
        else:
            migrate.upgrade(config.database_url)
        limits = ConnectionLimits(
            header_timeout=header_timeout,
            handshake_timeout=tls_handshake_timeout,
            body_timeout=body_timeout,
            max_connections=max_connections,
        )
        app = BodyDeadline(
            create_app(config, database, policy, policy_loader=lambda: load_server_policy(config)),
            limits.body_timeout,
        )
        scheme = "https" if config.tls else "http"
        mtls = " (client certificates required)" if config.tls_client_ca else ""
        banner = (
            f"canhgac collector: {len(policy.ruleset.rules)} rules, database {database.url},"
            f" listening on {scheme}://{config.listen}{mtls}"
            + (f", {workers} workers" if workers > 1 else "")
        )
        tls: dict[str, Any] = {}
        if config.tls:
            tls = {"ssl_certfile": str(config.tls_cert), "ssl_keyfile": str(config.tls_key)}
            if config.tls_client_ca is not None:
                tls["ssl_ca_certs"] = str(config.tls_client_ca)
                tls["ssl_cert_reqs"] = ssl.CERT_REQUIRED
        server = BannerServer(
            uvicorn.Config(
                app,
                host=host,
                port=port,
                log_level=log_level,
                log_config=log_config(log_level),
                server_header=False,
                **server_options(limits),
                **tls,
            ),
            banner if worker == 0 else "",  # one banner, not one per worker
            limits.handshake_timeout,
        )
        # uvicorn re-raises the SIGINT it handled; stopping is the normal end.
        with contextlib.suppress(KeyboardInterrupt):
            server.run(sockets=[listener])
    finally:
        listener.close()
        database.dispose()
    if not server.started:
        # uvicorn has logged why (the application's startup failed...).
        sys.exit(STARTUP_FAILURE)


def log_config(level: str) -> dict[str, Any]:
    """uvicorn's logging configuration, with the collector's own loggers (`server.*`:
    retention, re-evaluation, policy reload) printed at `level` beside uvicorn's, not
    only their warnings through Python's last-resort handler."""
    config: dict[str, Any] = copy.deepcopy(uvicorn.config.LOGGING_CONFIG)
    config["loggers"]["server"] = {
        "handlers": ["default"],
        "level": level.upper(),
        "propagate": False,
    }
    return config


class BannerServer(uvicorn.Server):
    """uvicorn's server, printing `banner` once it serves (never before or instead)."""

    def __init__(self, config: uvicorn.Config, banner: str, handshake_timeout: float) -> None:
        super().__init__(config)
        self.banner = banner
        self.handshake_timeout = handshake_timeout

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        quiet_accept_errors(asyncio.get_running_loop())
        set_handshake_deadline(asyncio.get_running_loop(), self.handshake_timeout)
        await super().startup(sockets)
        if self.started and self.banner:
            click.echo(self.banner, err=True)


def bind_listener(host: str, port: int) -> socket.socket:
    """A listening TCP socket on (host, port), as uvicorn would bind it; a port that is
    taken or not allowed is a one-line error (exit 1) naming the address."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    address = f"[{host}]:{port}" if family == socket.AF_INET6 else f"{host}:{port}"
    listener = socket.socket(family, socket.SOCK_STREAM)
    try:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((host, port))
        listener.listen(socket.SOMAXCONN)
    except OSError as e:
        listener.close()
        raise click.ClickException(_bind_problem(address, e)) from e
    listener.set_inheritable(True)
    return listener


def _bind_problem(address: str, error: OSError) -> str:
    if error.errno == errno.EADDRINUSE:
        return (
            f"cannot listen on {address}: the address is already in use (another collector"
            " or another program holds the port); stop it or choose another with --listen"
        )
    if error.errno == errno.EACCES:
        return f"cannot listen on {address}: permission denied (ports below 1024 need privileges)"
    if error.errno == errno.EADDRNOTAVAIL:
        return f"cannot listen on {address}: no interface of this host has that address"
    if isinstance(error, socket.gaierror):
        return f"cannot listen on {address}: unknown host name ({error.strerror or error})"
    return f"cannot listen on {address}: {error.strerror or os.strerror(error.errno or 0)}"


def load_policy_or_exit(config: ServerConfig) -> ServerPolicy:
    """Load the configured policy; on problems print each as file:line:col and exit 2."""
    try:
        return load_server_policy(config)
    except RuleLoadError as e:
        for problem in e.problems:
            click.echo(str(problem), err=True)
        click.echo(f"{len(e.problems)} problem(s) in the policy files; not starting", err=True)
        sys.exit(2)


@server_rules.command("reload", context_settings=CONTEXT)
@with_config
def rules_reload(config: ServerConfig) -> None:
    """Re-evaluate every host's latest facts with the configured policy, now.

    Running collectors also reload on SIGHUP and check their files periodically;
    this command does the re-evaluation itself (taking the replicas' lease).
    """
    policy = load_policy_or_exit(config)
    with migrated(config) as database:
        previous, _ = last_applied_fingerprint(database)
        outcome = Reevaluator(database).run(policy)
    if not outcome.ran:
        raise click.ClickException("another collector is re-evaluating right now; try later")
    click.echo(reload_summary(policy.fingerprint, previous, outcome.hosts))


def reload_summary(fingerprint: str, previous: str | None, hosts: int) -> str:
    """What `rules reload` did: whether the policy changed since the last re-evaluation
    recorded in the database, and how many hosts it re-evaluated (and why)."""
    new = fingerprint[:12]
    if previous is None:
        change = f"policy {new} (no re-evaluation recorded before)"
    elif previous == fingerprint:
        change = f"policy {new} unchanged since the last re-evaluation"
    else:
        change = f"policy changed: {previous[:12]} -> {new}"
    done = f"re-evaluated {hosts} host(s)"
    if hosts == 0 and previous == fingerprint:
        done += " (every host was already up to date)"
    return f"{change}; {done}"


@main.group(context_settings=CONTEXT)
def db() -> None:
    """Database maintenance."""


@db.command("upgrade", context_settings=CONTEXT)
@with_config
def db_upgrade(config: ServerConfig) -> None:
    """Migrate the database schema to the newest revision (the deploy step)."""
    open_database(config.database_url).dispose()  # clear errors for a bad path or URL
    migrate.upgrade(config.database_url)
    revision = migrate.current_revision(config.database_url)
    click.echo(f"database is at revision {revision}")


@db.command("prune", context_settings=CONTEXT)
@with_config
@click.option("--days", type=click.IntRange(min=1), help="Override server.retention_days.")
def db_prune(config: ServerConfig, days: int | None) -> None:
    """Delete facts history older than the retention (latest facts and findings stay)."""
    keep = days or config.retention_days
    with migrated(config) as database:
        pruned = prune(database, utc_now(), keep)
    click.echo(
        f"deleted {pruned.reports} report(s) and {pruned.blobs} superseded domain content(s)"
        f" older than {keep} day(s)"
    )
