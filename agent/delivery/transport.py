"""Delivering facts documents to the collector.

`Transport` is the seam: `HttpTransport` sends one document now; the durable spool
(`agent.delivery.spool`) wraps a Transport and retries from disk, without the
collectors knowing.

The HTTP contract: `POST {server}/api/v1/reports` with the document as gzip-compressed
JSON and a bearer token. The server answers 200 with
`{"status": "accepted"|"duplicate", "report_id", "duplicate", "score", "failing"}`, or
an error status with `{"error": {"code", "message", "field"?}}`.
"""

from __future__ import annotations

import gzip
import ipaddress
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import urlsplit

from agent import __version__
from agent.errors import ConfigError, ShippingError

if TYPE_CHECKING:
    import requests

REPORTS_PATH = "/api/v1/reports"
DEFAULT_TIMEOUT_SECONDS = 30.0
_MAX_ERROR_TEXT = 500
# The longest wait a Retry-After may ask for: a day (the spool's backoff is minutes).
MAX_RETRY_AFTER_SECONDS = 24 * 3600.0
# An IMF-fixdate is 29 characters, the obsolete forms a few more; longer is not parsed.
_MAX_RETRY_AFTER_TEXT = 64
_DELAY_SECONDS = re.compile(r"[0-9]+")


@dataclass(frozen=True)
class Delivery:
    """The collector's receipt for one report."""

    status: str  # "accepted" or "duplicate"
    report_id: str
    duplicate: bool
    score: float | None
    failing: int


class Transport(Protocol):
    def send(self, document: Mapping[str, Any]) -> Delivery: ...


def check_server_url(server_url: str) -> str:
    """The server URL without a trailing slash; plain HTTP only to a loopback address.

    Over plain HTTP the bearer token and the host's facts travel in clear text, which
    is only acceptable when they never leave the machine (a local test collector).
    """
    try:
        parts = urlsplit(server_url)
        hostname = parts.hostname
        parts.port  # noqa: B018 - parsed lazily; a bad port raises here, not mid-request
    except ValueError as e:  # "https://[::1", "https://host:port"
        raise ConfigError(f"invalid server URL {server_url!r}: {e}") from e
    if parts.scheme not in ("https", "http") or not hostname:
        raise ConfigError(f"invalid server URL {server_url!r}: expected https://host[:port]")
    if parts.query or parts.fragment:
        raise ConfigError(f"invalid server URL {server_url!r}: no query or fragment allowed")
    if parts.scheme == "http" and not _is_loopback(hostname):
        raise ConfigError(f"refusing to send the token over plain HTTP to {hostname}: use https://")
    return server_url.rstrip("/")


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_token(token: str) -> str:
    """The token without surrounding whitespace; it must be one printable word."""
    value = token.strip()
    if not value:
        raise ConfigError("the token is empty")
    if any(ch.isspace() or not ch.isprintable() for ch in value):
        raise ConfigError("the token contains whitespace or control characters")
    return value


def new_session() -> requests.Session:
    """A requests session, isolated from the environment.

    requests (with urllib3, http.client and email) is imported here, not at the top:
    it is ~0.1 CPU-s of every start, and only `run` and `enroll` send anything;
    `collect`, `check` and the rest never need it (LAZY_IMPORTS, tests/test_layout.py).
    """
    import requests  # noqa: PLC0415 - heavy, needed by the shipping commands only

    return isolated(requests.Session())


def isolated(session: requests.Session) -> requests.Session:
    """Never take settings from the environment: ~/.netrc would replace the Bearer
    token with its own Authorization header, and *_PROXY or REQUESTS_CA_BUNDLE would
    reroute or re-trust the connection behind the administrator's back. A proxy, if an
    agency needs one, becomes an explicit configuration option."""
    session.trust_env = False
    return session


def post(
    session: requests.Session,
    url: str,
    headers: Mapping[str, str],
    *,
    timeout: float,
    verify: str | bool,
    **body: Any,
) -> requests.Response:
    """POST to the collector; a transport failure becomes a ShippingError."""
    # Already loaded by whoever made `session` (new_session): only a name lookup here.
    import requests  # noqa: PLC0415 - heavy, needed by the shipping commands only

    try:
        return session.post(
            url,
            headers=dict(headers),
            timeout=timeout,
            verify=verify,
            # A redirect would re-send the report (and maybe the token) elsewhere.
            allow_redirects=False,
            **body,
        )
    except requests.exceptions.SSLError as e:
        raise ShippingError(
            f"TLS verification of {url} failed: {e}", reason="tls", url=url, detail=str(e)
        ) from e
    except requests.RequestException as e:
        raise ShippingError(
            f"cannot reach {url}: {e}", reason="unreachable", url=url, detail=str(e)
        ) from e


class HttpTransport:
    """Sends each document in one HTTPS request, verifying the server's certificate."""

    def __init__(
        self,
        server_url: str,
        token: str,
        *,
        ca_file: Path | None = None,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
        session: requests.Session | None = None,
    ) -> None:
        self.url = check_server_url(server_url) + REPORTS_PATH
        self._token = check_token(token)
        if ca_file is not None and not ca_file.is_file():
            raise ConfigError(f"CA file not found: {ca_file}")
        # Verification is never turned off: a private CA is trusted through ca_file.
        self._verify: str | bool = str(ca_file) if ca_file is not None else True
        self._timeout = timeout
        self._session = isolated(session) if session is not None else new_session()

    def send(self, document: Mapping[str, Any]) -> Delivery:
        body = gzip.compress(json.dumps(document, separators=(",", ":")).encode("utf-8"))
        headers = {
            "Content-Type": "application/json",
            "Content-Encoding": "gzip",
            "Authorization": f"Bearer {self._token}",
            "User-Agent": f"canhgac-agent/{__version__}",
            "Accept": "application/json",
        }
        response = post(
            self._session, self.url, headers, timeout=self._timeout, verify=self._verify, data=body
        )
        with response:
            if not 200 <= response.status_code < 300:
                raise rejection(self.url, response)
            return _receipt(self.url, response)


def rejection(url: str, response: requests.Response) -> ShippingError:
    """The collector's refusal, with its JSON error body, as a ShippingError."""
    code = message = field = None
    try:
        error = response.json().get("error")
    except (ValueError, AttributeError):
        error = None
    if isinstance(error, dict):
        code = _text(error.get("code"))
        message = _text(error.get("message"))
        field = _text(error.get("field"))
    detail = f"HTTP {response.status_code}"
    if code:
        detail += f" {code}"
    if message:
        detail += f": {message}"
    elif not code:
        detail += f" {response.reason or ''}".rstrip()
    if field:
        detail += f" (field {field})"
    return ShippingError(
        f"the server refused the request: {detail} [{url}]",
        reason="rejected",
        url=url,
        detail=detail,
        status=response.status_code,
        code=code,
        server_message=message,
        field=field,
        retry_after=_retry_after(response.headers.get("Retry-After")),
    )


def _retry_after(
    value: str | None, now: Callable[[], datetime] = lambda: datetime.now(UTC)
) -> float | None:
    """Retry-After (RFC 9110, 10.2.3) in seconds from now, at most a day: delay-seconds
    or an HTTP-date (a proxy or load balancer in front of the collector may send
    either); a date already past is 0. Anything else is None: the spool's own backoff
    applies."""
    if value is None:
        return None
    text = value.strip()
    if len(text) > _MAX_RETRY_AFTER_TEXT:
        return None
    if _DELAY_SECONDS.fullmatch(text):
        return min(float(int(text)), MAX_RETRY_AFTER_SECONDS)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # "-0000" parses naive; an HTTP-date is always GMT
        when = when.replace(tzinfo=UTC)
    seconds = (when - now()).total_seconds()
    return min(max(seconds, 0.0), MAX_RETRY_AFTER_SECONDS)


def _receipt(url: str, response: requests.Response) -> Delivery:
    try:
        data = response.json()
    except ValueError as e:
        raise ShippingError(
            f"unexpected answer from {url} (HTTP {response.status_code}): not JSON",
            url=url,
            detail=f"HTTP {response.status_code}: not JSON",
            status=response.status_code,
        ) from e
    problem = _receipt_problem(data)
    if problem:
        raise ShippingError(
            f"unexpected answer from {url} (HTTP {response.status_code}): {problem}",
            url=url,
            detail=f"HTTP {response.status_code}: {problem}",
            status=response.status_code,
        )
    status, score = data["status"], data.get("score")
    return Delivery(
        status=status,
        report_id=data["report_id"],
        duplicate=bool(data.get("duplicate", status == "duplicate")),
        score=float(score) if score is not None else None,
        failing=data.get("failing", 0),
    )


def _receipt_problem(data: Any) -> str | None:
    """Why `data` is not a valid receipt, or None when it is."""
    if not isinstance(data, dict):
        return "not a JSON object"
    if not isinstance(data.get("status"), str) or not isinstance(data.get("report_id"), str):
        return "status and report_id must be strings"
    score = data.get("score")
    if score is not None and (isinstance(score, bool) or not isinstance(score, int | float)):
        return "score must be a number or null"
    failing = data.get("failing", 0)
    if isinstance(failing, bool) or not isinstance(failing, int):
        return "failing must be an integer"
    return None


def _text(value: object) -> str | None:
    if value is None:
        return None
    return str(value)[:_MAX_ERROR_TEXT]
