"""`canhgac-server vulndb`: import feed files or bundles, show the store's status, and
fetch a bundle on a connected machine (docs/vulnerabilities.md).

Every message is in the chosen language (`--lang`, Vietnamese by default): errors are
rendered from their kind (server/cli/vulndb_messages.py), never click's English
"Error:" line.
"""

from __future__ import annotations

from pathlib import Path
from typing import NoReturn

import click

from server.cli.common import CONTEXT, print_table, with_config
from server.cli.vulndb_messages import error_text, imported_text
from server.clock import utc_now
from server.config import ServerConfig
from server.vulns.bundle import DEFAULT_SOURCES, fetch_bundle, read_inputs
from server.vulns.errors import VulnDbError, VulnErrorKind
from server.vulns.store import FeedInfo, build_store, read_status

LANGS = click.Choice(["vi", "en"])
_HEADERS = {
    "vi": ("nguồn dữ liệu", "định dạng", "dữ liệu ngày", "tuổi (ngày)", "kích thước (KiB)",
           "số mục", "tình trạng"),
    "en": ("feed", "format", "data from", "age (days)", "size (KiB)", "entries", "state"),
}  # fmt: skip
_STATE = {"vi": ("còn mới", "QUÁ CŨ"), "en": ("current", "STALE")}


def _fail(error: VulnDbError, lang: str, code: int = 1) -> NoReturn:
    click.echo(error_text(error, lang), err=True)
    raise SystemExit(code)


@click.group("vulndb", context_settings=CONTEXT)
def vulndb() -> None:
    """Vulnerability feeds: import, status, fetch (for air-gapped collectors)."""


@vulndb.command("import", context_settings=CONTEXT)
@with_config
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--store", type=click.Path(dir_okay=False, path_type=Path), help="Store file.")
@click.option("--lang", type=LANGS, default="vi", show_default=True)
def import_command(
    config: ServerConfig, paths: tuple[Path, ...], store: Path | None, lang: str
) -> None:
    """Import feed files and bundle directories (format detected from the content).

    Everything is validated first; the new store replaces the old one atomically, so a
    refused file leaves the previous store in place. Running collectors re-evaluate
    every host on their next policy check (or SIGHUP)."""
    target = store or config.vulndb_file
    for path in paths:  # checked here: click's own refusal is English only
        if not path.exists():
            _fail(
                VulnDbError(f"{path} does not exist", VulnErrorKind.PATH_MISSING, path=str(path)),
                lang,
            )
    try:
        feeds = read_inputs(list(paths))
        generation = build_store(target, feeds, utc_now())
    except VulnDbError as e:
        _fail(e, lang)
    names = ", ".join(f"{feed.name} ({feed.entries})" for feed in feeds)
    click.echo(imported_text(names, str(target), generation[:12], lang))


@vulndb.command("status", context_settings=CONTEXT)
@with_config
@click.option("--store", type=click.Path(dir_okay=False, path_type=Path), help="Store file.")
@click.option("--lang", type=LANGS, default="vi", show_default=True)
def status_command(config: ServerConfig, store: Path | None, lang: str) -> None:
    """Each feed's age and size; exit 1 when the store is missing or a feed is stale."""
    target = store or config.vulndb_file
    if not target.exists():
        missing = VulnDbError(
            f"no feed store at {target} (canhgac-server vulndb import)",
            VulnErrorKind.STORE_MISSING,
            path=str(target),
        )
        _fail(missing, lang)
    try:
        feeds = read_status(target)
    except VulnDbError as e:
        _fail(e, lang)
    now = utc_now()
    rows = []
    stale = False
    for feed in feeds:
        age = (now - feed.generated_at).total_seconds() / 86400
        too_old = age > config.vulndb_max_age_days
        stale = stale or too_old
        rows.append(_row(feed, age, too_old, lang))
    print_table(_HEADERS[lang], rows)
    if stale:
        raise SystemExit(1)


def _row(feed: FeedInfo, age: float, too_old: bool, lang: str) -> list[str]:
    day = "%d/%m/%Y" if lang == "vi" else "%Y-%m-%d"
    mib = f"{feed.size_bytes / 1024:.1f}"
    age_text = f"{age:.1f}"
    if lang == "vi":
        mib, age_text = mib.replace(".", ","), age_text.replace(".", ",")
    return [
        feed.name,
        feed.format,
        feed.generated_at.strftime(day),
        age_text,
        mib,
        str(feed.entries),
        _STATE[lang][1 if too_old else 0],
    ]


@vulndb.command("fetch", context_settings=CONTEXT)
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "--source",
    "sources",
    multiple=True,
    metavar="NAME=URL",
    help="A file to fetch (repeatable; default: Debian tracker, CISA KEV, EPSS, Ubuntu OSV).",
)
@click.option("--lang", type=LANGS, default="vi", show_default=True)
def fetch_command(directory: Path, sources: tuple[str, ...], lang: str) -> None:
    """On a CONNECTED machine: download the feeds into DIRECTORY with a SHA-256
    manifest; carry the directory to the collector and `vulndb import` it."""
    pairs = []
    for source in sources:
        name, sep, url = source.partition("=")
        if not sep:
            error = VulnDbError(
                f"--source {source!r} is not NAME=URL", VulnErrorKind.BAD_SOURCE, source=source
            )
            _fail(error, lang, 2)  # a usage error, as click's own
        pairs.append((name, url))
    try:
        fetched = fetch_bundle(directory, pairs or list(DEFAULT_SOURCES), utc_now())
    except VulnDbError as e:
        _fail(e, lang)
    except OSError as e:
        where = str(e.filename or directory)
        _fail(
            VulnDbError(
                f"cannot write to {where}: {e.strerror or e}",
                VulnErrorKind.WRITE_FAILED,
                path=where,
            ),
            lang,
        )
    for item in fetched:
        click.echo(f"{item.name}  {item.size_bytes}  sha256:{item.sha256}")
