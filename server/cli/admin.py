"""`canhgac-server` administration commands: agencies, enrolment secrets, agent and
API tokens. Secrets are printed once, on stdout, and never echoed back afterwards."""

from __future__ import annotations

import re
from datetime import datetime, timedelta

import click

from rules.terminal import printable
from server.auth.agent_tokens import (
    create_token,
    list_tokens,
    revoke_agent,
    revoke_token,
    token_id_of,
)
from server.auth.api_tokens import ROLES, api_token_id_of, create_api_token, list_api_tokens
from server.auth.api_tokens import revoke_api_token as revoke_api
from server.auth.enrolment import add_agency, list_agencies, rotate_enrol_secret
from server.cli.common import CONTEXT, migrated, print_table, time_text, with_config
from server.clock import utc_now
from server.config import ServerConfig
from server.errors import InvalidArgumentError

_DURATION_RE = re.compile(r"(\d+)([dh])")


def register(main: click.Group) -> None:
    for group in (token, agency, agent, api_token):
        main.add_command(group)


@click.group(context_settings=CONTEXT)
def token() -> None:
    """Agent tokens made by hand (enrolment makes them for you)."""


@token.command("create")
@with_config
@click.option("--agency", "agency_id", required=True, help="Agency id (created when absent).")
@click.option("--name", help="A label for the token (for example the server's name).")
def token_create(config: ServerConfig, agency_id: str, name: str | None) -> None:
    """Create a token and print it (only this once)."""
    with migrated(config) as database, database.write() as session:
        info, plain = create_token(session, agency_id, name, utc_now)
    click.echo(plain)
    click.echo(
        f"token {info.token_id} for agency {info.agency_id} created; it is shown only once,"
        " store it now",
        err=True,
    )


@token.command("list")
@with_config
@click.option("--agency", "agency_id", help="Only this agency's tokens.")
def token_list(config: ServerConfig, agency_id: str | None) -> None:
    """List tokens (never their secrets)."""
    with migrated(config) as database, database.session() as session:
        tokens = list_tokens(session, agency_id)
    rows = [
        (
            t.token_id,
            t.agency_id,
            t.name,
            t.agent_id or "-",
            time_text(t.created_at),
            time_text(t.last_used_at),
            "revoked " + time_text(t.revoked_at) if t.revoked_at else "active",
        )
        for t in tokens
    ]
    print_table(("TOKEN ID", "AGENCY", "NAME", "AGENT", "CREATED", "LAST USED", "STATE"), rows)


@token.command("revoke")
@with_config
@click.argument("token")
def token_revoke(config: ServerConfig, token: str) -> None:
    """Revoke a token (its id, or the whole token): its reports are refused from now on."""
    token_id = token_id_of(token)
    with migrated(config) as database, database.write() as session:
        info = revoke_token(session, token_id, utc_now)
    if info is None:
        # Never echo what was given: it may be a whole token with its secret.
        raise click.ClickException("no such token")
    click.echo(f"token {info.token_id} revoked")


@click.group(context_settings=CONTEXT)
def agency() -> None:
    """Agencies and their enrolment secrets."""


@agency.command("add")
@with_config
@click.argument("agency_id")
@click.option("--name", required=True, help="The agency's name, as reports show it.")
def agency_add(config: ServerConfig, agency_id: str, name: str) -> None:
    """Add an agency (or rename it)."""
    with migrated(config) as database, database.write() as session:
        added = add_agency(session, agency_id, name, utc_now)
        click.echo(f"agency {printable(added.id)} ({printable(added.name)})")


@agency.command("list")
@with_config
def agency_list(config: ServerConfig) -> None:
    """List agencies, their host counts and enrolment secret state."""
    with migrated(config) as database, database.session() as session:
        agencies = list_agencies(session, utc_now())
    rows = [
        (
            a.id,
            a.name,
            str(a.hosts),
            ("until " + time_text(a.enrol_secret_expires_at))
            if a.enrol_secret_expires_at
            else ("active" if a.has_enrol_secret else "none"),
        )
        for a in agencies
    ]
    print_table(("AGENCY", "NAME", "HOSTS", "ENROL SECRET"), rows)


@agency.command("enrol-secret")
@with_config
@click.argument("agency_id")
@click.option("--expires", help="Lifetime (30d, 12h) or a date (2027-01-31). Default: none.")
def agency_enrol_secret(config: ServerConfig, agency_id: str, expires: str | None) -> None:
    """Create or rotate the agency's enrolment secret and print it (only this once)."""
    expires_at = parse_expiry(expires) if expires else None
    with migrated(config) as database, database.write() as session:
        plain = rotate_enrol_secret(session, agency_id, expires_at, utc_now)
    click.echo(plain)
    click.echo(
        f"enrolment secret for agency {agency_id} created (previous ones no longer work);"
        " it is shown only once",
        err=True,
    )


def parse_expiry(text: str) -> datetime:
    match = _DURATION_RE.fullmatch(text.strip())
    now = utc_now()
    if match:
        amount = int(match.group(1))
        return now + (timedelta(days=amount) if match.group(2) == "d" else timedelta(hours=amount))
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError as e:
        raise InvalidArgumentError(f"--expires {text!r}: use 30d, 12h or a date") from e
    return moment if moment.tzinfo else moment.replace(tzinfo=now.tzinfo)


@click.group(context_settings=CONTEXT)
def agent() -> None:
    """Enrolled agents."""


@agent.command("revoke")
@with_config
@click.argument("agent_id")
def agent_revoke(config: ServerConfig, agent_id: str) -> None:
    """Revoke every token of an agent: refused at once; it may then enrol again."""
    with migrated(config) as database, database.write() as session:
        revoked = revoke_agent(session, agent_id, utc_now)
    if not revoked:
        raise click.ClickException(f"no agent {agent_id!r}")
    click.echo(f"agent {agent_id}: revoked token(s) {', '.join(revoked)}")


@click.group("api-token", context_settings=CONTEXT)
def api_token() -> None:
    """API tokens for reading the API (viewer) and administering it (admin)."""


@api_token.command("create")
@with_config
@click.option("--name", required=True, help="Who or what uses it.")
@click.option("--role", type=click.Choice(ROLES), default="viewer", show_default=True)
@click.option(
    "--agency",
    "agency_id",
    help="Scope a viewer token to this agency: it reads only this agency's data.",
)
def api_token_create(config: ServerConfig, name: str, role: str, agency_id: str | None) -> None:
    """Create an API token and print it (only this once)."""
    with migrated(config) as database, database.write() as session:
        token_id, plain = create_api_token(session, name, role, utc_now, agency_id)
    click.echo(plain)
    scope = f"agency {printable(agency_id)}" if agency_id is not None else "every agency"
    click.echo(f"API token {token_id} ({role}, {scope}) created; it is shown only once", err=True)


@api_token.command("list")
@with_config
def api_token_list(config: ServerConfig) -> None:
    """List API tokens (never their secrets)."""
    with migrated(config) as database, database.session() as session:
        tokens = list_api_tokens(session)
        rows = [
            (
                t.id,
                t.name,
                t.role,
                t.agency_id if t.agency_id is not None else "*",
                time_text(t.created_at),
                time_text(t.last_used_at),
                "revoked " + time_text(t.revoked_at) if t.revoked_at else "active",
            )
            for t in tokens
        ]
    print_table(("TOKEN ID", "NAME", "ROLE", "AGENCY", "CREATED", "LAST USED", "STATE"), rows)


@api_token.command("revoke")
@with_config
@click.argument("token")
def api_token_revoke(config: ServerConfig, token: str) -> None:
    """Revoke an API token (its id, or the whole token)."""
    token_id = api_token_id_of(token)
    with migrated(config) as database, database.write() as session:
        found = revoke_api(session, token_id, utc_now)
    if not found:
        raise click.ClickException("no such API token")
    click.echo(f"API token {token_id} revoked")
