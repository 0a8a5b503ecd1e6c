"""The vulnerability layer's vocabulary: states, feeds' advisories, matched items."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class State(StrEnum):
    """Where a (CVE, package) stands on one host."""

    FIX_AVAILABLE = "fix_available"  # the fixed version is in the release's archive
    FIX_PENDING = "fix_pending"  # fixed by the vendor, not yet in the archive
    AFFECTED_NO_FIX = "affected_no_fix"
    WILL_NOT_FIX = "will_not_fix"  # the vendor ignores it for this release
    END_OF_LIFE = "end_of_life"  # the package is no longer supported in the release


class Status(StrEnum):
    """What a feed says of (release, package, CVE), before a host's version is known."""

    FIXED = "fixed"  # affected below fixed_version
    OPEN = "open"  # affected, no fix
    IGNORED = "ignored"  # affected, the vendor will not fix
    END_OF_LIFE = "end_of_life"


class VendorSeverity(StrEnum):
    CRITICAL = "critical"
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"
    NEGLIGIBLE = "negligible"  # Debian "unimportant"
    UNKNOWN = "unknown"  # not yet assigned


@dataclass(frozen=True)
class Advisory:
    """One feed's statement about a source package of a release."""

    distro: str  # os-release ID: debian, ubuntu, rhel...
    release: str  # Debian/Ubuntu codename, RHEL major version
    package: str  # source package name
    cve: str
    status: Status
    fixed_version: str | None  # None unless FIXED
    archive_version: str | None  # newest version the release's archive has, if known
    severity: VendorSeverity
    no_dsa: bool = False  # Debian: minor, fixed in a point release rather than a DSA
    pro_only: bool = False  # Ubuntu: the fix is only in Ubuntu Pro (ESM)


@dataclass(frozen=True)
class FeedData:
    """A parsed feed file: what the store keeps of it."""

    name: str  # debian-tracker, kev, epss...
    format: str
    generated_at: str  # RFC 3339 UTC: when the data was produced or fetched
    sha256: str
    size_bytes: int
    advisories: tuple[Advisory, ...] = ()
    kev: tuple[tuple[str, str], ...] = ()  # (cve, date added)
    epss: tuple[tuple[str, float, float], ...] = ()  # (cve, score, percentile)

    @property
    def entries(self) -> int:
        return len(self.advisories) + len(self.kev) + len(self.epss)
