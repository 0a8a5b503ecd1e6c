"""Pieces shared by the `canhgac-agent` command modules: options, exit codes, errors."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import click

from agent.app import ENROL_SECRET_ENV, TOKEN_ENV
from agent.errors import AgentError, ConfigError
from rules.terminal import printable

LANGS = ("vi", "en")
SEVERITIES = ("critical", "high", "medium", "low", "info")
__all__ = [
    "ENROL_SECRET_ENV",
    "LANGS",
    "SEVERITIES",
    "TOKEN_ENV",
    "UsageFailure",
    "agent_errors",
    "config_option",
    "lang_option",
    "state_dir_option",
]


class UsageFailure(click.ClickException):
    """Bad usage, configuration or rules: exit code 2, like click's own usage errors."""

    exit_code = 2


@contextmanager
def agent_errors() -> Iterator[None]:
    """Turn agent exceptions into one-line messages with the right exit code."""
    try:
        yield
    except ConfigError as e:
        raise UsageFailure(printable(e)) from e
    except AgentError as e:
        raise click.ClickException(printable(e)) from e


config_option = click.option(
    "--config",
    "config_path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="YAML configuration file (its `agent:` section); flags win over it.",
)
state_dir_option = click.option(
    "--state-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Where the sequence number is kept (default /var/lib/canhgac-agent when writable,"
    " else $XDG_STATE_HOME/canhgac-agent).",
)
lang_option = click.option(
    "--lang", type=click.Choice(LANGS), default="vi", show_default=True, help="Output language."
)
