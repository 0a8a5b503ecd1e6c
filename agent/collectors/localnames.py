"""The names this host answers to, for judging a local TLS listener's certificate.

A listener is probed without knowing which name its clients use: a web server with
virtual hosts presents the certificate of one of them, which rightly does not name the
machine. A listener's certificate is therefore a mismatch only when it names none of:

- the host name and its FQDN;
- the names /etc/hosts gives any address (administrators list served names there);
- the names the local web servers are configured to serve: nginx `server_name`,
  Apache `ServerName`/`ServerAlias` (sites enabled and conf.d files).

Wildcard and regular-expression server names and nginx's catch-all `_` are skipped:
they name no host a certificate could be checked against. Reading is bounded (files
and names); an unreadable file costs only its names.
"""

from __future__ import annotations

import re

from agent.collectors.base import CollectContext, Issue, list_dir, read_file_or_issue

MAX_NAMES = 512
MAX_FILES = 200
NGINX_FILES = ("/etc/nginx/nginx.conf",)
NGINX_DIRS = ("/etc/nginx/conf.d", "/etc/nginx/sites-enabled")
APACHE_FILES = ("/etc/apache2/apache2.conf", "/etc/httpd/conf/httpd.conf")
APACHE_DIRS = (
    "/etc/apache2/sites-enabled",
    "/etc/apache2/conf-enabled",
    "/etc/httpd/conf.d",
)
# nginx directives may share a line ("server { server_name x; }").
_NGINX = re.compile(r"(?:^|[\s{;])server_name\s+([^;#]*)", re.MULTILINE)
_APACHE = re.compile(r"^\s*(?:ServerName|ServerAlias)\s+([^#\n]*)", re.MULTILINE | re.IGNORECASE)
_NAME = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9.-]{0,252})$")


def local_names(ctx: CollectContext, base: list[str], issues: list[Issue]) -> list[str]:
    """`base` (host name, FQDN) then every other name the host is known by, unique."""
    found: dict[str, None] = {n.lower(): None for n in base if n}
    for name in hosts_names(read_file_or_issue(ctx, "/etc/hosts", issues, "local names") or ""):
        found.setdefault(name, None)
    for text in _config_texts(ctx, NGINX_FILES, NGINX_DIRS, issues):
        for name in server_names(text, _NGINX):
            found.setdefault(name, None)
    for text in _config_texts(ctx, APACHE_FILES, APACHE_DIRS, issues):
        for name in server_names(text, _APACHE):
            found.setdefault(name, None)
    return list(found)[:MAX_NAMES]


def hosts_names(text: str) -> list[str]:
    """Every name of an /etc/hosts text (the words after each address)."""
    names: list[str] = []
    for raw in text.splitlines():
        words = raw.split("#", 1)[0].split()
        names += [w.lower() for w in words[1:] if _NAME.match(w)]
    return names


def server_names(text: str, pattern: re.Pattern[str]) -> list[str]:
    """Literal names of the server-name directives `pattern` finds in a config text."""
    names: list[str] = []
    for match in pattern.finditer(text):
        for raw in match.group(1).split():
            word = raw.strip("\"'").rstrip(".").lower()
            # Port suffixes (Apache "ServerName www.x:443") name the same host.
            name = word.rsplit(":", 1)[0] if word.count(":") == 1 else word
            if _NAME.match(name):
                names.append(name)
    return names


def _config_texts(
    ctx: CollectContext, files: tuple[str, ...], dirs: tuple[str, ...], issues: list[Issue]
) -> list[str]:
    paths = list(files)
    for directory in dirs:
        paths += [f"{directory}/{n}" for n in list_dir(ctx, directory, issues, "local names")]
    texts: list[str] = []
    for path in paths[:MAX_FILES]:
        text = read_file_or_issue(ctx, path, issues, "local names")
        if text is not None:
            texts.append(text)
    return texts
