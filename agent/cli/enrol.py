"""`canhgac-agent enroll`: trade the agency's enrolment secret for this agent's token.

Parses options, calls `agent.app.enrol` and prints the outcome through `agent.output`.
"""

from __future__ import annotations

from pathlib import Path

import click

from agent import app
from agent.cli.common import (
    ENROL_SECRET_ENV,
    agent_errors,
    config_option,
    lang_option,
    state_dir_option,
)
from agent.config import load_config
from agent.errors import ShippingError
from agent.output.messages import enrolled_line, enrolment_message
from rules.terminal import printable


@click.command()
@click.option("--server", help="Collector URL, e.g. https://canhgac.example.gov.vn")
@click.option(
    "--secret-file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help=f"File holding the agency's enrolment secret (or set ${ENROL_SECRET_ENV}).",
)
@click.option(
    "--ca-file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="CA certificate(s) (PEM) to verify the collector with, for a private CA.",
)
@click.option("--force", is_flag=True, help="Enrol again even if a token is already saved.")
@click.option("--timeout", type=click.FloatRange(min=0.1), default=30.0, show_default=True)
@state_dir_option
@config_option
@lang_option
def enroll(
    *,
    server: str | None,
    secret_file: Path | None,
    ca_file: Path | None,
    force: bool,
    timeout: float,
    state_dir: Path | None,
    config_path: Path | None,
    lang: str,
) -> None:
    """Enrol this host with the collector once; the token is saved for `run`."""
    with agent_errors():
        config = load_config(config_path)
        app.server_url_of(config, server)  # before the secret: the first thing to fix
        secret = app.enrolment_secret(secret_file, app.environment())
        shipping = app.Shipping(server=server, ca_file=ca_file, timeout=timeout)
        try:
            enrolled = app.enrol(
                config, state_dir, shipping, secret, force=force, host=app.HostAccess()
            )
        except ShippingError as e:
            raise click.ClickException(printable(enrolment_message(e, lang))) from e
    enrolment = enrolled.enrolment
    click.echo(
        enrolled_line(
            printable(enrolment.agent_id),
            printable(enrolment.agency),
            str(enrolled.token_path),
            lang,
        )
    )
