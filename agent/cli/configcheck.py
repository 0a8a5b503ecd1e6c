"""`canhgac-agent config check`: every problem of the configuration at once.

The file's `agent:` section and the `CANHGAC_AGENT_*` variables are checked together,
each problem printed on its own line with the key's path (`FILE: agent.KEY ...` or
`$CANHGAC_AGENT_KEY ...`); exit 2 when there is any, so a deployment script can stop.
"""

from __future__ import annotations

from pathlib import Path

import click

from agent import app
from agent.cli.common import UsageFailure, config_option, lang_option
from agent.config import InvalidConfigError, load_config
from agent.discovery.config import parse_discovery
from agent.discovery.errors import DiscoveryConfigError
from agent.errors import ConfigError
from rules.terminal import printable


@click.group()
def config_group() -> None:
    """Inspect the agent's configuration."""


@config_group.command("check")
@config_option
@lang_option
def check_config(config_path: Path | None, lang: str) -> None:
    """Report every problem of the configuration (file and environment) at once."""
    try:
        config = load_config(config_path, app.environment())
    except InvalidConfigError as e:
        for problem in e.problems:
            click.echo(printable(problem), err=True)
        noun = "vấn đề" if lang == "vi" else "problem(s)"
        raise UsageFailure(f"{len(e.problems)} {noun}") from e
    except ConfigError as e:
        raise UsageFailure(printable(e)) from e
    try:
        discovery = parse_discovery(config.discovery)
    except DiscoveryConfigError as e:
        where = f"{config_path}: " if config_path is not None else ""
        for problem in e.problems:
            click.echo(printable(where + problem), err=True)
        noun = "vấn đề" if lang == "vi" else "problem(s)"
        raise UsageFailure(f"{len(e.problems)} {noun}") from e
    interval = f"{config.interval_seconds:g}"
    sweep = f"{discovery.interval_seconds:g}"
    if lang == "vi":
        line = f"cấu hình hợp lệ; thu thập mỗi {interval.replace('.', ',')} giây"
        if discovery.enabled:
            line += f"; dò tìm thiết bị mạng nội bộ mỗi {sweep.replace('.', ',')} giây"
    else:
        line = f"configuration valid; collecting every {interval} s"
        if discovery.enabled:
            line += f"; LAN discovery every {sweep} s"
    click.echo(line)
