"""The agent's configuration file: the `agent:` section of a YAML file.

The same file may hold the collector's `server:` section; other top-level keys are
ignored. Unknown keys inside `agent:` are errors, because a misspelt option silently
ignored in a security tool is worse than a refusal to start. Relative paths are
resolved against the directory of the configuration file. Environment variables
`CANHGAC_AGENT_<KEY>` (e.g. `CANHGAC_AGENT_INTERVAL=5m`) override the file's keys, read
as YAML values (`[a, b]` is a list) with relative paths against the working directory;
command-line flags win over both. Every problem is collected, so one `config check`
lists them all, each with its key's path.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from agent.collectors.base import CollectSettings
from agent.errors import ConfigError
from rules.language.yamlfile import YamlFileError, load_yaml_file

KEYS = (
    "server",
    "token_file",
    "ca_file",
    "state_dir",
    "agent_id",
    "rules",
    "budget_seconds",
    "certificate_paths",
    "tls_endpoints",
    "probe_listeners",
    "interval",
    "spool_max_reports",
    "spool_max_bytes",
    "discovery",
)
MAX_CONFIG_BYTES = 1024 * 1024
ENV_PREFIX = "CANHGAC_AGENT_"
DEFAULT_INTERVAL_SECONDS = 15 * 60.0
MIN_INTERVAL_SECONDS = 1.0
_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?")
_UNITS = {None: 1.0, "ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


class InvalidConfigError(ConfigError):
    """Every problem of a configuration, each starting with the file and key path."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = tuple(problems)
        more = len(problems) - 1
        suffix = f" (and {more} more: see `canhgac-agent config check`)" if more else ""
        super().__init__(problems[0] + suffix)


def parse_duration(value: object) -> float:
    """Seconds from a number or "90s", "5m", "1.5h", "250ms"; ValueError otherwise."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        seconds = float(value)
    elif isinstance(value, str) and (match := _DURATION.fullmatch(value.strip())):
        seconds = float(match.group(1)) * _UNITS[match.group(2)]
    else:
        raise ValueError(f"not a duration: {value!r} (e.g. 900, 90s, 15m, 1h)")
    if seconds <= 0:
        raise ValueError("a duration must be positive")
    return seconds


@dataclass(frozen=True)
class AgentConfig:
    server: str | None = None
    token_file: Path | None = None
    ca_file: Path | None = None
    state_dir: Path | None = None
    agent_id: str | None = None
    rules: tuple[Path, ...] = ()
    budget_seconds: float | None = None
    certificate_paths: tuple[str, ...] | None = None  # None: the built-in defaults
    tls_endpoints: tuple[str, ...] = ()
    probe_listeners: bool = True
    interval_seconds: float = DEFAULT_INTERVAL_SECONDS
    spool_max_reports: int | None = None  # None: the spool's defaults
    spool_max_bytes: int | None = None
    # `agent.discovery` as written; agent/discovery/config.py gives it meaning.
    discovery: Mapping[str, Any] | None = None

    def collect_settings(self) -> CollectSettings:
        return CollectSettings(
            certificate_paths=self.certificate_paths,
            tls_endpoints=self.tls_endpoints,
            probe_listeners=self.probe_listeners,
        )


def load_config(path: Path | None, environ: Mapping[str, str] | None = None) -> AgentConfig:
    """The `agent:` section of the file at `path` (defaults when None), with the
    `CANHGAC_AGENT_*` variables of `environ` over it. InvalidConfigError lists every problem."""
    section: dict[Any, Any] = {}
    problems: list[str] = []
    origin: dict[str, str] = {}
    if path is not None:
        section = _read_section(path)
        origin = {str(key): f"{path}: agent.{key}" for key in section}
    env_base = Path.cwd()
    for name, value in (environ or {}).items():
        if not name.startswith(ENV_PREFIX):
            continue
        key = name[len(ENV_PREFIX) :].lower()
        where = f"${name}"
        if key not in KEYS:
            problems.append(f"{where}: unknown key agent.{key} (known: {', '.join(KEYS)})")
            continue
        try:
            section[key] = yaml.safe_load(value)
        except yaml.YAMLError as e:
            problems.append(f"{where}: not a YAML value: {str(e).splitlines()[0]}")
            continue
        origin[key] = f"{where} (agent.{key})"
    bases = {
        key: env_base if key in origin and origin[key].startswith("$") else None for key in KEYS
    }
    file_base = path.parent if path is not None else env_base
    config = _parse(
        section,
        lambda key: origin.get(key, f"agent.{key}"),
        lambda key: bases.get(key) or file_base,
        problems,
        unknown_where=str(path) if path is not None else "agent",
    )
    if problems:
        raise InvalidConfigError(problems)
    return config


def _read_section(path: Path) -> dict[Any, Any]:
    try:
        raw = load_yaml_file(path, MAX_CONFIG_BYTES)
    except YamlFileError as e:
        raise ConfigError(str(e)) from e
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: the top level must be a mapping")
    section = raw.get("agent")
    if section is None:
        return {}
    if not isinstance(section, dict):
        raise ConfigError(f"{path}: 'agent' must be a mapping")
    return dict(section)


def _parse(
    section: dict[Any, Any],
    where: Callable[[str], str],
    base_of: Callable[[str], Path],
    problems: list[str],
    *,
    unknown_where: str,
) -> AgentConfig:
    unknown = sorted(str(key) for key in section if key not in KEYS)
    if unknown:
        problems.append(
            f"{unknown_where}: unknown key(s) in 'agent': {', '.join(unknown)}"
            f" (known: {', '.join(KEYS)})"
        )

    def problem(key: str, what: str) -> None:
        problems.append(f"{where(key)} must be {what}")

    def text(key: str) -> str | None:
        value = section.get(key)
        if value is None:
            return None
        if not isinstance(value, str) or not value.strip():
            problem(key, "a non-empty string")
            return None
        return value.strip()

    def file_path(key: str) -> Path | None:
        value = text(key)
        return None if value is None else base_of(key) / Path(value).expanduser()

    rules = section.get("rules")
    rule_paths: tuple[Path, ...] = ()
    if isinstance(rules, str) and rules:
        rule_paths = (base_of("rules") / Path(rules).expanduser(),)
    elif isinstance(rules, list) and all(isinstance(r, str) and r for r in rules):
        rule_paths = tuple(base_of("rules") / Path(r).expanduser() for r in rules)
    elif rules is not None:
        problem("rules", "a path or a list of paths")

    def positive(key: str, *, integer: bool) -> float | None:
        value = section.get(key)
        if value is None:
            return None
        allowed = int if integer else int | float
        if isinstance(value, bool) or not isinstance(value, allowed) or value <= 0:
            problem(key, "a positive " + ("integer" if integer else "number"))
            return None
        return float(value)

    budget = positive("budget_seconds", integer=False)

    def text_list(key: str) -> tuple[str, ...] | None:
        value = section.get(key)
        if value is None:
            return None
        if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
            problem(key, "a list of non-empty strings")
            return None
        return tuple(v.strip() for v in value)

    probe = section.get("probe_listeners", True)
    if not isinstance(probe, bool):
        problem("probe_listeners", "true or false")
        probe = True

    interval = DEFAULT_INTERVAL_SECONDS
    if section.get("interval") is not None:
        try:
            interval = parse_duration(section["interval"])
        except ValueError as e:
            problem("interval", f"a duration such as 15m or 900 ({e})")
        if interval < MIN_INTERVAL_SECONDS:
            problem("interval", f"at least {MIN_INTERVAL_SECONDS:g} second")
            interval = DEFAULT_INTERVAL_SECONDS

    return AgentConfig(
        certificate_paths=text_list("certificate_paths"),
        tls_endpoints=text_list("tls_endpoints") or (),
        probe_listeners=probe,
        server=text("server"),
        token_file=file_path("token_file"),
        ca_file=file_path("ca_file"),
        state_dir=file_path("state_dir"),
        agent_id=text("agent_id"),
        rules=rule_paths,
        budget_seconds=float(budget) if budget is not None else None,
        interval_seconds=interval,
        spool_max_reports=_integer(positive("spool_max_reports", integer=True)),
        spool_max_bytes=_integer(positive("spool_max_bytes", integer=True)),
        discovery=_mapping(section.get("discovery"), where("discovery"), problems),
    )


def _mapping(value: object, where: str, problems: list[str]) -> Mapping[str, Any] | None:
    if value is None or isinstance(value, dict):
        return value
    problems.append(f"{where} must be a mapping")
    return None


def _integer(value: float | None) -> int | None:
    return None if value is None else int(value)
