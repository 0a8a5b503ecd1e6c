"""One host's installed packages grouped the way the store is keyed: (source, source
version) -> the binaries built from it, and the running kernel's package.

- Debian/Ubuntu by SOURCE package and source version (feeds are keyed by source:
  libssl3 is `openssl`);
- kernel CVEs only for the RUNNING kernel's image: `linux-signed-amd64` images are
  the `linux` source at the binary's version; other installed kernels, headers and
  tools built from `linux` are skipped;
- RPM keys (source or binary.arch, module stream) are rpm_keys.py's.

This walk runs for every package of every matched host, so it is written for speed
(exact type checks before the abstract `Mapping` one, which costs a lot per call),
with the same result as the plain `str(value or default)` reading of each field.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from server.vulns.rpm_keys import rpm_key

KERNEL_SOURCES = frozenset(
    {"linux", "linux-signed-amd64", "linux-signed-arm64", "linux-signed-i386"}
)

Sources = dict[tuple[str, str], list[str]]


def group_sources(
    items: Any, running_kernel: str, distro: str, manager: str
) -> tuple[Sources, str | None]:
    """(source, source version) -> binaries; the running kernel's package name."""
    rpm = manager == "rpm"
    sources: Sources = {}
    kernel_package = None
    running_images = {f"linux-image-{running_kernel}", f"linux-image-{running_kernel}-unsigned"}
    for package in items if isinstance(items, list) else ():
        if type(package) is not dict and not isinstance(package, Mapping):
            continue
        get = package.get
        # `x if type(x) is str else str(x or "")` is `str(x or "")`, without the call
        # for the usual case
        name = get("name")
        name = name if type(name) is str else str(name or "")
        version = get("version")
        version = version if type(version) is str else str(version or "")
        source = get("source")
        source = source if source and type(source) is str else str(source or name)
        source_version = get("source_version")
        if not (source_version and type(source_version) is str):
            source_version = str(source_version or version)
        if source in KERNEL_SOURCES:
            if name not in running_images:
                continue  # not the running kernel: an old image, headers, tools
            # signed images: the binary's version is the `linux` source version
            source, source_version, kernel_package = "linux", version, name
        elif rpm:
            key = rpm_key(package, distro, running_kernel)
            if key is None:
                continue  # an installed kernel that is not the running one
            source, source_version, image = key
            kernel_package = name if image else kernel_package
        if name and source_version:
            found = sources.get((source, source_version))
            if found is None:
                sources[(source, source_version)] = [name]
            else:
                found.append(name)
    return sources, kernel_package
