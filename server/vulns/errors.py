"""The vulnerability layer's errors: one base, a subclass of the collector's.

Each error carries a `kind` and its parameters (paths, URLs, numbers: never prose), so
that a front end renders it in the user's language (server/cli/vulndb_messages.py);
the message itself is the English text, with the details (a parser's or the system's
reason) that only the English rendering shows.
"""

from __future__ import annotations

from enum import StrEnum

from server.errors import ServerError


class VulnErrorKind(StrEnum):
    INVALID_FEED = "invalid_feed"  # a feed file that does not parse or validate
    PATH_MISSING = "path_missing"
    NOTHING_TO_IMPORT = "nothing_to_import"
    DUPLICATE_FEED = "duplicate_feed"
    MANIFEST_UNREADABLE = "manifest_unreadable"
    MANIFEST_INVALID = "manifest_invalid"
    MANIFEST_MISMATCH = "manifest_mismatch"  # altered or cut in transit
    LISTED_UNREADABLE = "listed_unreadable"
    STORE_MISSING = "store_missing"
    STORE_BUILD = "store_build"
    STORE_INTEGRITY = "store_integrity"
    STORE_UNREADABLE = "store_unreadable"
    STORE_VERSION = "store_version"
    URL_REFUSED = "url_refused"
    DOWNLOAD_FAILED = "download_failed"
    DOWNLOAD_TOO_LARGE = "download_too_large"
    NOT_GZIP = "not_gzip"
    GZIP_TOO_LARGE = "gzip_too_large"
    BAD_FILE_NAME = "bad_file_name"
    BAD_SOURCE = "bad_source"  # a --source that is not NAME=URL
    WRITE_FAILED = "write_failed"


class VulnDbError(ServerError):
    """A feed file or store that cannot be used; the message says which and why."""

    def __init__(
        self,
        message: str,
        kind: VulnErrorKind = VulnErrorKind.INVALID_FEED,
        **params: str,
    ) -> None:
        super().__init__(message)
        self.kind = kind
        self.params = params
