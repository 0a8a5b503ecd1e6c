"""`canhgac-agent enroll`: trade the agency's enrolment secret for this agent's token."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import click

from agent.cli.common import (
    ENROL_SECRET_ENV,
    UsageFailure,
    agent_errors,
    config_option,
    lang_option,
    state_dir_option,
)
from agent.config import load_config
from agent.errors import ConfigError
from agent.output.terminal import printable


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
    from agent.collectors.base import CollectorError
    from agent.collectors.host import read_machine_id
    from agent.delivery.enrolment import TOKEN_FILE_NAME, save_token
    from agent.delivery.enrolment import enroll as request_token
    from agent.errors import ShippingError
    from agent.output.messages import enrolled_line, enrolment_message
    from agent.state.identity import current_agent_id
    from agent.state.store import StateStore, default_state_dir

    with agent_errors():
        config = load_config(config_path)
        server_url = server or config.server
        if not server_url:
            raise UsageFailure("no collector URL: pass --server URL or set agent.server")
        secret = _enrolment_secret(secret_file)
        directory = state_dir or config.state_dir or default_state_dir()
        if (directory / TOKEN_FILE_NAME).exists() and not force:
            saved = directory / TOKEN_FILE_NAME
            raise UsageFailure(f"already enrolled ({saved} exists); use --force to enrol again")
        root = Path("/")
        agent_id = current_agent_id(StateStore(directory), config.agent_id, root)
        try:
            machine_id: str | None = read_machine_id(root)
        except CollectorError:
            machine_id = None
        try:
            enrolment = request_token(
                server_url,
                secret,
                agent_id=agent_id,
                hostname=socket.gethostname(),
                machine_id=machine_id,
                ca_file=ca_file or config.ca_file,
                timeout=timeout,
            )
        except ShippingError as e:
            raise click.ClickException(printable(enrolment_message(e, lang))) from e
        path = save_token(directory, enrolment.token)
    click.echo(
        enrolled_line(printable(enrolment.agent_id), printable(enrolment.agency), str(path), lang)
    )


def _enrolment_secret(secret_file: Path | None) -> str:
    if secret_file is not None:
        try:
            return secret_file.read_text("utf-8")
        except OSError as e:
            raise ConfigError(
                f"cannot read the secret file {secret_file}: {e.strerror or e}"
            ) from e
    from_env = os.environ.get(ENROL_SECRET_ENV)
    if from_env:
        return from_env
    raise UsageFailure(f"no enrolment secret: pass --secret-file FILE or set {ENROL_SECRET_ENV}")
