"""The `deleted_libraries` domain: processes still running code that was replaced.

After a library update (OpenSSL, glibc) a process started before it keeps the old,
deleted copy mapped until it restarts: the fix is installed but not in effect. The
kernel marks such mappings ` (deleted)` in /proc/<pid>/maps; this is what
`needrestart -b` and `checkrestart` look for, read here without either tool (RHEL
has neither by default).

Only shared objects count (a path with `.so` in its name): memfd and SysV shared
memory mappings are "deleted" by design. Reading another user's maps needs root:
a process whose maps cannot be read makes the answer unknown (null, with how many
were unreadable), never a clean list. Bounded: at most `MAX_PROCESSES` processes,
each maps file cut at `MAX_MAPS_BYTES`, `MAX_LIBRARIES` libraries named per process.
"""

from __future__ import annotations

from typing import Any

from agent.collectors.base import (
    CollectContext,
    Collected,
    CollectorError,
    ErrorKind,
    Issue,
    clip,
    read_bytes_at,
)

MAX_PROCESSES = 10000
MAX_MAPS_BYTES = 8 * 1024 * 1024
MAX_LIBRARIES = 10
MAX_REPORTED = 500
DELETED = " (deleted)"


def collect_deleted_libraries(ctx: CollectContext) -> Collected:
    try:
        pids = sorted(int(e.name) for e in ctx.path("/proc").iterdir() if e.name.isdigit())
    except OSError as e:
        raise CollectorError(ErrorKind.FAILED, f"/proc: {e.strerror or e}") from e
    if not pids:
        raise CollectorError(ErrorKind.FAILED, "no process visible under /proc")
    processes: list[dict[str, Any]] = []
    denied = 0
    for pid in pids[:MAX_PROCESSES]:
        base = ctx.path(f"/proc/{pid}")
        try:
            maps = read_bytes_at(base / "maps", f"/proc/{pid}/maps", MAX_MAPS_BYTES)
            comm = read_bytes_at(base / "comm", f"/proc/{pid}/comm", 4096)
        except CollectorError as e:
            if e.kind is ErrorKind.PERMISSION:
                denied += 1
            continue  # otherwise the process exited meanwhile
        if maps is None:
            continue
        libraries = deleted_libraries(maps.decode("utf-8", errors="replace"))
        if libraries and len(processes) < MAX_REPORTED:
            name = (comm or b"").decode("utf-8", errors="replace").strip()
            processes.append(
                {"pid": pid, "process": clip(name, 64), "libraries": libraries[:MAX_LIBRARIES]}
            )
    issues: list[Issue] = []
    if denied:
        # Root is refused too where the kernel's ptrace access check says no (a
        # container's init, no CAP_SYS_PTRACE): "run as root" would then mislead.
        advice = (
            "refused even to root (ptrace access check)"
            if ctx.system.is_privileged()
            else "run as root"
        )
        issues.append(
            Issue(
                ErrorKind.PERMISSION,
                f"{denied} process(es) whose /proc/<pid>/maps could not be read; {advice}",
            )
        )
    if len(pids) > MAX_PROCESSES:
        issues.append(
            Issue(ErrorKind.SKIPPED, f"{len(pids) - MAX_PROCESSES} processes beyond the cap")
        )
    complete = not issues
    return Collected(
        {"complete": complete, "processes": processes if complete else None}, tuple(issues)
    )


def deleted_libraries(maps: str) -> list[str]:
    """Deleted shared objects still mapped, from a /proc/<pid>/maps text, unique, sorted."""
    found: set[str] = set()
    for line in maps.splitlines():
        if not line.endswith(DELETED):
            continue
        fields = line.split(None, 5)
        if len(fields) < 6:
            continue
        path = fields[5][: -len(DELETED)]
        name = path.rsplit("/", 1)[-1]
        # Shared memory is deleted by design; only library files count.
        shared_memory = path.startswith(("/memfd:", "/dev/shm/", "/SYSV"))  # noqa: S108
        if path.startswith("/") and not shared_memory and ".so" in name:
            found.add(clip(path, 1024))
    return sorted(found)
