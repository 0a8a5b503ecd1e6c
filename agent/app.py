"""The agent's orchestration: collect, check, run once (without the spool), enrol.

The spooled cycle of `run` (collect, spool, drain) is `agent.daemon`.

`agent.cli` parses options, calls these functions and prints their results; nothing
here prints or knows about click. Every dependency is an argument: the configuration,
the state directory, how the host is read (`HostAccess`: collect context, clock,
hostname), the transport reports go through and the environment variables consulted.
Errors are `AgentError`s (a `ConfigError` is a usage error for the CLI, exit 2);
a failed delivery or enrolment is a `ShippingError`, framed by `agent.output`.
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol, TextIO

from agent.collectors.base import CollectContext, CollectorError, CollectorFn
from agent.collectors.host import read_machine_id
from agent.collectors.registry import COLLECTORS
from agent.config import AgentConfig
from agent.delivery.enrolment import TOKEN_FILE_NAME, Enrolment, save_token
from agent.delivery.enrolment import enroll as request_enrolment
from agent.delivery.transport import Delivery, HttpTransport, Transport
from agent.discovery.collector import discovery_collector
from agent.discovery.config import parse_discovery
from agent.document import DEFAULT_BUDGET_SECONDS, collect_facts
from agent.errors import ConfigError
from agent.state.identity import Identity, current_agent_id, derived_agent_id, next_identity
from agent.state.pending import peek_first_seen, remember_pending
from agent.state.store import StateStore, default_state_dir
from rules.engine import evaluate
from rules.facts import SCHEMA_ID, Domain
from rules.language.loader import builtin_packs_dir, load_rules
from rules.language.model import RuleSet
from rules.policy.scoring import Score, score_results
from rules.results import RuleResult

TOKEN_ENV = "CANHGAC_TOKEN"  # noqa: S105 - the name of a variable, not a secret
ENROL_SECRET_ENV = "CANHGAC_ENROL_SECRET"  # noqa: S105 - the name of a variable

FactsDocument = dict[str, Any]


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class HostAccess:
    """How the agent reads the host it runs on; tests pass recorded or fake parts.

    `context` is the base collect context (root, command runner, system facade); the
    settings from the configuration and the remembered pending updates are filled in
    for each collection.
    """

    context: CollectContext = field(default_factory=CollectContext)
    clock: Callable[[], datetime] = _utc_now
    hostname: Callable[[], str] = socket.gethostname

    @property
    def root(self) -> Path:
        return self.context.root


def state_directory(config: AgentConfig, state_dir: Path | None) -> Path:
    """--state-dir, else agent.state_dir, else the default for this user."""
    return state_dir or config.state_dir or default_state_dir()


# collect -----------------------------------------------------------------------------


def collect(config: AgentConfig, state_dir: Path | None, host: HostAccess) -> FactsDocument:
    """A document for shipping or saving: takes the next sequence number and records,
    in the state, when each pending update was first seen."""
    store = StateStore(state_directory(config, state_dir))
    identity = next_identity(store, config.agent_id, host.root)
    state = store.load()
    ctx = replace(
        host.context,
        settings=config.collect_settings(),
        first_seen=state.pending_seen,
        pending_watched_since=state.pending_watched_since,
    )
    document = _collect(config, ctx, identity, host, state_directory(config, state_dir))
    remember_pending(store, document)
    return document


def collect_local(
    config: AgentConfig, host: HostAccess, *, read_state: bool = True
) -> FactsDocument:
    """A document without a sequence number (seq 0): nothing is written.

    With `read_state` (`check`), an existing state is read, when readable, only so that
    pending updates keep the age the agent's regular runs have been counting;
    `collect --no-state` reads no state at all.
    """
    first_seen, watched_since = peek_first_seen(config.state_dir) if read_state else ({}, None)
    ctx = replace(
        host.context,
        settings=config.collect_settings(),
        first_seen=first_seen,
        pending_watched_since=watched_since,
    )
    agent_id = derived_agent_id(config.agent_id, host.root) or "local"
    return _collect(config, ctx, Identity(agent_id=agent_id, seq=0), host)


def _collect(
    config: AgentConfig,
    ctx: CollectContext,
    identity: Identity,
    host: HostAccess,
    state_dir: Path | None = None,
) -> FactsDocument:
    return collect_facts(
        ctx,
        identity,
        budget_seconds=config.budget_seconds or DEFAULT_BUDGET_SECONDS,
        registry=collectors_for(config, state_dir),
        now=host.clock,
    )


def collectors_for(
    config: AgentConfig, state_dir: Path | None = None
) -> Mapping[Domain, CollectorFn]:
    """Every collector, plus LAN discovery where `agent.discovery.enabled` is set (its
    last sweep kept in `state_dir`; without one, every collection sweeps)."""
    settings = parse_discovery(config.discovery)
    if not settings.enabled:
        return COLLECTORS
    return {**COLLECTORS, Domain.DISCOVERY: discovery_collector(settings, state_dir)}


# check -------------------------------------------------------------------------------


@dataclass(frozen=True)
class CollectorNote:
    """A collector that failed or was skipped, as the facts document says."""

    domain: str
    kind: str
    reason: str
    partial: bool = False  # the domain is in the document: only part of it is missing

    def __str__(self) -> str:
        return f"{self.domain}: {self.kind}: {self.reason}"


@dataclass(frozen=True)
class CheckOutcome:
    results: list[RuleResult]
    score: Score
    notes: list[CollectorNote]
    # The rules evaluated, kept so the report's remediation texts (which live in the
    # rules, not in the results) need no second load: that load was a quarter of `check`.
    ruleset: RuleSet


def rule_paths_for(config: AgentConfig, given: Sequence[Path]) -> list[Path]:
    """--rules, else agent.rules, else the built-in packs."""
    return list(given) or list(config.rules) or [builtin_packs_dir()]


def check(rule_paths: Sequence[Path], facts: Mapping[str, Any]) -> CheckOutcome:
    """Evaluate `facts` against the rules at `rule_paths`; the score is local.

    Raises `rules.errors.RuleLoadError` (with every problem) when the rules are invalid.
    """
    ruleset = load_rules(list(rule_paths))
    results = evaluate(ruleset, facts)
    return CheckOutcome(
        results=results,
        score=score_results(results),
        notes=collector_notes(facts),
        ruleset=ruleset,
    )


def collector_notes(facts: Mapping[str, Any]) -> list[CollectorNote]:
    """The document's `errors` entries: rules reading a failed domain report `error`,
    and saying why up front saves a hunt."""
    errors = facts.get("errors")
    if not isinstance(errors, list):
        return []
    return [
        CollectorNote(
            str(entry.get("domain")),
            str(entry.get("kind")),
            str(entry.get("reason")),
            partial=facts.get(str(entry.get("domain"))) is not None,
        )
        for entry in errors
        if isinstance(entry, dict)
    ]


def read_facts(path: Path, stdin: TextIO) -> FactsDocument:
    """A facts document from `path` ('-' reads `stdin`); ConfigError when unusable."""
    try:
        text = stdin.read() if str(path) == "-" else path.read_text("utf-8")
        document = json.loads(text)
    except OSError as e:
        raise ConfigError(f"cannot read {path}: {e.strerror or e}") from e
    except ValueError as e:  # UnicodeDecodeError included
        raise ConfigError(f"{path} is not valid JSON: {e}") from e
    # A cheap structural check instead of JSON Schema validation: the agent carries no
    # schema library, and the rules report `error` for anything malformed deeper down.
    if not isinstance(document, dict) or document.get("schema") != SCHEMA_ID:
        raise ConfigError(f"{path} is not a {SCHEMA_ID} document")
    if not isinstance(document.get("errors"), list):
        raise ConfigError(f"{path} is not a valid {SCHEMA_ID} document: 'errors' must be a list")
    return document


# run ---------------------------------------------------------------------------------


class TransportFactory(Protocol):
    def __call__(
        self, server_url: str, token: str, *, ca_file: Path | None, timeout: float
    ) -> Transport: ...


def http_transport(
    server_url: str, token: str, *, ca_file: Path | None, timeout: float
) -> Transport:
    return HttpTransport(server_url, token, ca_file=ca_file, timeout=timeout)


@dataclass(frozen=True)
class Shipping:
    """Where and how `run` ships: given by flags, completed from the configuration."""

    server: str | None = None
    token: str | None = None
    token_file: Path | None = None
    ca_file: Path | None = None
    timeout: float = 30.0


def server_url_of(config: AgentConfig, given: str | None) -> str:
    url = given or config.server
    if not url:
        raise ConfigError("no collector URL: pass --server URL or set agent.server")
    return url


def open_transport(
    config: AgentConfig,
    state_dir: Path | None,
    shipping: Shipping,
    environ: Mapping[str, str],
    factory: TransportFactory = http_transport,
) -> Transport:
    """The transport `run` ships through; usage problems are ConfigErrors, raised before
    anything is collected (no sequence number is spent on a command that cannot ship)."""
    server_url = server_url_of(config, shipping.server)
    token = resolve_token(config, state_dir, shipping, environ)
    return factory(
        server_url, token, ca_file=shipping.ca_file or config.ca_file, timeout=shipping.timeout
    )


def run_once(
    config: AgentConfig, state_dir: Path | None, transport: Transport, host: HostAccess
) -> Delivery:
    """Collect one report (next sequence number) and ship it without the spool;
    ShippingError when it cannot be delivered."""
    return transport.send(collect(config, state_dir, host))


def resolve_token(
    config: AgentConfig, state_dir: Path | None, shipping: Shipping, environ: Mapping[str, str]
) -> str:
    """--token, --token-file, $CANHGAC_TOKEN, agent.token_file, then the enrolled token."""
    if shipping.token and shipping.token_file:
        raise ConfigError("--token and --token-file cannot be used together")
    if shipping.token:
        return shipping.token
    path = shipping.token_file
    if path is None:
        from_env = environ.get(TOKEN_ENV)
        if from_env:
            return from_env
        path = config.token_file
    if path is None:
        enrolled = token_path(config, state_dir)
        path = enrolled if enrolled.is_file() else None
    if path is None:
        raise ConfigError(
            f"no token: run `canhgac-agent enroll`, or pass --token-file FILE, set {TOKEN_ENV},"
            " or set agent.token_file"
        )
    try:
        return path.read_text("utf-8")
    except OSError as e:
        raise ConfigError(f"cannot read the token file {path}: {e.strerror or e}") from e


# enrol -------------------------------------------------------------------------------


class EnrolmentRequest(Protocol):
    def __call__(
        self,
        server_url: str,
        secret: str,
        *,
        agent_id: str,
        hostname: str,
        machine_id: str | None = None,
        ca_file: Path | None = None,
        timeout: float = ...,
    ) -> Enrolment: ...


@dataclass(frozen=True)
class Enrolled:
    enrolment: Enrolment
    token_path: Path


def enrolment_secret(secret_file: Path | None, environ: Mapping[str, str]) -> str:
    """--secret-file, else $CANHGAC_ENROL_SECRET."""
    if secret_file is not None:
        try:
            return secret_file.read_text("utf-8")
        except OSError as e:
            raise ConfigError(
                f"cannot read the secret file {secret_file}: {e.strerror or e}"
            ) from e
    from_env = environ.get(ENROL_SECRET_ENV)
    if from_env:
        return from_env
    raise ConfigError(f"no enrolment secret: pass --secret-file FILE or set {ENROL_SECRET_ENV}")


def enrol(
    config: AgentConfig,
    state_dir: Path | None,
    shipping: Shipping,
    secret: str,
    *,
    force: bool,
    host: HostAccess,
    request: EnrolmentRequest = request_enrolment,
) -> Enrolled:
    """Trade the agency's enrolment secret for this agent's token and save it (0600)."""
    server_url = server_url_of(config, shipping.server)
    directory = state_directory(config, state_dir)
    saved = token_path(config, state_dir)
    if saved.exists() and not force:
        raise ConfigError(f"already enrolled ({saved} exists); use --force to enrol again")
    agent_id = current_agent_id(StateStore(directory), config.agent_id, host.root)
    try:
        machine_id: str | None = read_machine_id(host.root)
    except CollectorError:
        machine_id = None
    enrolment = request(
        server_url,
        secret,
        agent_id=agent_id,
        hostname=host.hostname(),
        machine_id=machine_id,
        ca_file=shipping.ca_file or config.ca_file,
        timeout=shipping.timeout,
    )
    return Enrolled(enrolment, save_token(saved, enrolment.token))


def token_path(config: AgentConfig, state_dir: Path | None) -> Path:
    """Where `enroll` saves the token and `run` reads it: agent.token_file when set,
    else `agent.token` in the state directory."""
    return config.token_file or state_directory(config, state_dir) / TOKEN_FILE_NAME


def environment() -> Mapping[str, str]:
    """The process environment, as the CLI passes it to the functions above."""
    return os.environ
