"""How an installed RPM is looked up in the store: the keys matching.py groups packages by.

- RHEL (Red Hat CSAF VEX): by SOURCE RPM name at the source's epoch:version-release;
- Rocky and Alma (updateinfo): by BINARY `name.arch` (noarch included) at the
  package's own epoch:version-release, since updateinfo lists the binaries it fixes;
- a package built in a module stream (its `module` label `name:stream:version:context`)
  gets `@name:stream` appended, so it only matches advisories of that stream, never
  a non-module build of the same name (whose fixed version says nothing of it);
- kernel packages only at the running kernel (`uname -r` is version-release.arch):
  an older installed kernel is not what runs.
A missing epoch is 0 in rpmvercmp order (versions.compare_rpm), so it is left as is.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

BINARY_KEYED = frozenset({"rocky", "almalinux"})  # os-release IDs matched by updateinfo
KERNEL_IMAGES = frozenset({"kernel", "kernel-core"})


def stream_of(package: Mapping[str, Any]) -> str:
    """`@module:stream` for a module build, else ""."""
    label = str(package.get("module") or "")
    parts = label.split(":")
    return f"@{parts[0]}:{parts[1]}" if len(parts) >= 2 and parts[0] and parts[1] else ""


def is_running_kernel(package: Mapping[str, Any], running_kernel: str) -> bool:
    version = str(package.get("version") or "")
    arch = str(package.get("architecture") or "")
    return f"{version.partition(':')[2] or version}.{arch}" == running_kernel


def rpm_key(
    package: Mapping[str, Any], distro: str, running_kernel: str
) -> tuple[str, str, bool] | None:
    """(store key, version compared, is the running kernel image) of one installed RPM,
    or None when it is not matched (an installed kernel that is not running)."""
    name = str(package.get("name") or "")
    version = str(package.get("version") or "")
    source = str(package.get("source") or name)
    if source == "kernel" and not is_running_kernel(package, running_kernel):
        return None
    image = source == "kernel" and name in KERNEL_IMAGES
    stream = stream_of(package)
    if distro in BINARY_KEYED:
        arch = str(package.get("architecture") or "")
        return f"{name}.{arch}{stream}", version, image
    return f"{source}{stream}", str(package.get("source_version") or version), image
