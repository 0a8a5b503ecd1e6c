"""The agent's configuration file: the `agent:` section of a YAML file.

The same file may hold the collector's `server:` section; other top-level keys are
ignored. Unknown keys inside `agent:` are errors, because a misspelt option silently
ignored in a security tool is worse than a refusal to start. Relative paths are
resolved against the directory of the configuration file. Command-line flags win over
the file.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

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
)
MAX_CONFIG_BYTES = 1024 * 1024


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

    def collect_settings(self) -> CollectSettings:
        return CollectSettings(
            certificate_paths=self.certificate_paths,
            tls_endpoints=self.tls_endpoints,
            probe_listeners=self.probe_listeners,
        )


def load_config(path: Path | None) -> AgentConfig:
    """The `agent:` section of the file at `path`; defaults when `path` is None."""
    if path is None:
        return AgentConfig()
    try:
        raw = load_yaml_file(path, MAX_CONFIG_BYTES)
    except YamlFileError as e:
        raise ConfigError(str(e)) from e
    if raw is None:
        return AgentConfig()
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: the top level must be a mapping")
    section = raw.get("agent")
    if section is None:
        return AgentConfig()
    if not isinstance(section, dict):
        raise ConfigError(f"{path}: 'agent' must be a mapping")
    return _parse(section, path)


def _parse(section: dict[Any, Any], path: Path) -> AgentConfig:
    unknown = sorted(str(key) for key in section if key not in KEYS)
    if unknown:
        raise ConfigError(
            f"{path}: unknown key(s) in 'agent': {', '.join(unknown)} (known: {', '.join(KEYS)})"
        )
    base = path.parent

    def text(key: str) -> str | None:
        value = section.get(key)
        if value is None:
            return None
        if not isinstance(value, str) or not value.strip():
            raise ConfigError(f"{path}: agent.{key} must be a non-empty string")
        return value.strip()

    def file_path(key: str) -> Path | None:
        value = text(key)
        return None if value is None else base / Path(value).expanduser()

    rules = section.get("rules")
    if rules is None:
        rule_paths: tuple[Path, ...] = ()
    elif isinstance(rules, str):
        rule_paths = (base / Path(rules).expanduser(),)
    elif isinstance(rules, list) and all(isinstance(r, str) and r for r in rules):
        rule_paths = tuple(base / Path(r).expanduser() for r in rules)
    else:
        raise ConfigError(f"{path}: agent.rules must be a path or a list of paths")

    budget = section.get("budget_seconds")
    if budget is not None and (
        isinstance(budget, bool) or not isinstance(budget, int | float) or budget <= 0
    ):
        raise ConfigError(f"{path}: agent.budget_seconds must be a positive number")

    def text_list(key: str) -> tuple[str, ...] | None:
        value = section.get(key)
        if value is None:
            return None
        if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
            raise ConfigError(f"{path}: agent.{key} must be a list of non-empty strings")
        return tuple(v.strip() for v in value)

    probe = section.get("probe_listeners", True)
    if not isinstance(probe, bool):
        raise ConfigError(f"{path}: agent.probe_listeners must be true or false")

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
    )
