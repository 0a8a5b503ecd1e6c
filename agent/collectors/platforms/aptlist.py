"""`apt list --upgradable` without writing on the host, reading apt's own caches when
that is safe.

Run as root with apt's default configuration, `apt list` (re)writes
/var/cache/apt/pkgcache.bin and srcpkgcache.bin whenever they are stale (a temporary
file renamed over them), so the agent has always run it with empty cache file names
(`APT_LIST`): apt then builds its package cache in memory, ~0.9 CPU-s here, most of a
first collect's CPU.

Where the host keeps those caches (apt's default; Debian's container images disable
them), apt can map them instead (~0.3 CPU-s here), but only where it cannot write
them. apt asks access(2) whether the cache directory is writable; when it is not, a
stale cache is left as it is and apt builds in memory, and if apt ever tried to write,
the kernel would refuse. The agent makes sure the directory is on a read-only mount:

- it already is for the agent's systemd units (ProtectSystem=strict): apt runs as the
  agent does, naming the caches (`cached_list_argv`);
- else, as root with CAP_SYS_ADMIN (an interactive `canhgac-agent collect`), apt runs
  in a private mount namespace of its own (`unshare --mount --propagation private`)
  where the directory is bind-mounted read-only over itself: the mount is apt's alone
  (no propagation), leaves nothing behind and changes nothing on disk.

apt still runs as root and reads exactly what it read before, and the answer is the
same: apt reuses a cache only while it still describes the lists and dpkg status it
was built from (their names, sizes and modification times), and applies pinning and
origins at run time either way. Both cache files must exist and, like their
directory, belong to root and be writable by no one else: a cache another user could
write could lie. A failure of that command (no mount namespaces, a refused mount) makes
the agent run `APT_LIST` as before; a timeout is an error, not a second 45-second
attempt. (Running apt as another user with setpriv was tried first: the runner's
prlimit(2) on a child that has already switched user needs CAP_SYS_RESOURCE, which
containers and the agent's units do not have, and that user may not read all of
apt's inputs.)
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from agent.collectors.base import CollectContext, CollectorError, ErrorKind, run_tool
from agent.errors import CommandError, CommandNotFound, CommandTimeout

IN_MEMORY_OPTIONS = ["-o", "Dir::Cache::pkgcache=", "-o", "Dir::Cache::srcpkgcache="]
APT_LIST = ["apt", *IN_MEMORY_OPTIONS, "list", "--upgradable"]
CACHE_DIR = "/var/cache/apt"
CACHE_FILES = {"pkgcache": "pkgcache.bin", "srcpkgcache": "srcpkgcache.bin"}
# The directory reaches the script as "$0" and apt's command line as "$@": never
# inside the script's text. -n: mount records nothing (no /run/mount/utab, which it
# would otherwise create where it is missing).
READ_ONLY_SCRIPT = 'mount -n --bind "$0" "$0" && mount -n -o remount,bind,ro "$0" && exec "$@"'
PRIVATE_NAMESPACE = ["unshare", "--mount", "--propagation", "private", "--"]
_WRITABLE_BY_OTHERS = stat.S_IWGRP | stat.S_IWOTH
_CAP_SYS_ADMIN = 1 << 21  # linux/capability.h


def cached_list_argv(ctx: CollectContext) -> list[str] | None:
    """`apt list --upgradable` reading the host's caches where apt cannot write them,
    or None when that is not safe here (then `APT_LIST`)."""
    directory = ctx.path(CACHE_DIR)
    if not _root_only_writable(directory, want_dir=True):
        return None
    options: list[str] = []
    for key, name in CACHE_FILES.items():
        if not _root_only_writable(directory / name, want_dir=False):
            return None
        options += ["-o", f"Dir::Cache::{key}={directory / name}"]
    listing = ["apt", *options, "list", "--upgradable"]
    if _read_only_mount(directory):
        return listing
    if os.geteuid() != 0 or not _has_capability(_CAP_SYS_ADMIN):
        return None
    return [*PRIVATE_NAMESPACE, "sh", "-c", READ_ONLY_SCRIPT, str(directory), *listing]


def upgradable_listing(ctx: CollectContext, timeout: float) -> str:
    """`apt list --upgradable`'s output: from the host's caches when `cached_list_argv`
    allows it and that command succeeded, else from `APT_LIST`."""
    argv = cached_list_argv(ctx)
    if argv is not None:
        try:
            result = ctx.run(argv, timeout)
        except CommandTimeout as e:
            raise CollectorError(ErrorKind.TIMEOUT, str(e)) from e
        except (CommandNotFound, CommandError):
            result = None  # no unshare, or the runner could not bound it: as before
        if result is not None and result.returncode == 0 and not _failed(result.stderr):
            return result.stdout
    return run_tool(ctx, APT_LIST, timeout)


def _failed(stderr: str) -> bool:
    """An apt error ("E: ...") despite a zero exit. Warnings ("W:") are not: apt runs
    as root on the same inputs, so it warns as `APT_LIST` would."""
    return any(line.startswith("E:") for line in stderr.splitlines())


def _read_only_mount(directory: Path) -> bool:
    try:
        return bool(os.statvfs(directory).f_flag & os.ST_RDONLY)
    except OSError:
        return False


def _has_capability(bit: int) -> bool:
    """`bit` in this process's effective capabilities (a systemd unit's bounding set
    may leave it out: then unshare would only fail)."""
    try:
        status = Path("/proc/self/status").read_text()
    except OSError:
        return False
    for line in status.splitlines():
        if line.startswith("CapEff:"):
            return bool(int(line.split()[1], 16) & bit)
    return False


def _root_only_writable(path: Path, *, want_dir: bool) -> bool:
    try:
        st = os.lstat(path)
    except OSError:
        return False  # absent (caches disabled) or unreadable: the in-memory path
    kind_ok = stat.S_ISDIR(st.st_mode) if want_dir else stat.S_ISREG(st.st_mode)
    return kind_ok and st.st_uid == 0 and not st.st_mode & _WRITABLE_BY_OTHERS
