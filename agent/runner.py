"""Running external commands: the `CommandRunner` seam and its subprocess implementation.

Collectors never call `subprocess` themselves: they receive a `CommandRunner`, so tests
replay recorded outputs and the real runner applies one policy everywhere (no shell,
C locale so outputs parse the same on every host, a timeout, a known PATH, and the
watchdog's resource limits).

The watchdog's share here: every child runs under `ChildLimits`, set with prlimit(2)
on the child right after it starts (`preexec_fn` is unsafe in a threaded program, and
collectors run in threads): RLIMIT_CPU kills a runaway with SIGXCPU/SIGKILL, and
RLIMIT_DATA (heap and private mappings, close to what RSS grows by) makes its
allocations fail. Either raises `CommandOverBudget` and is recorded against the
calling thread's name (`collector-<domain>`), for `document` to skip that collector
for a while (`take_overruns`).
"""

from __future__ import annotations

import resource
import signal
import subprocess
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from agent.errors import CommandError, CommandNotFound, CommandTimeout

# A fixed PATH rather than the caller's: the agent usually runs as root, and a PATH
# inherited from an interactive shell could make it run an unexpected program.
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
MIB = 1024 * 1024


@dataclass(frozen=True)
class ChildLimits:
    """What one child command may use. osquery's watchdog (200 MB, 10 % CPU over 12 s)
    is the ceiling: `apt list --upgradable` needs ~0.75 CPU-s and ~55 MB when it builds
    apt's cache in memory (~0.26 CPU-s reading the host's caches: platforms/aptlist)."""

    cpu_seconds: int = 10
    data_bytes: int = 192 * MIB
    # dnf/yum load the whole repository metadata (libsolv): measured on no RHEL host
    # here, so they get twice the room rather than an updates domain lost everywhere.
    big_data_bytes: int = 384 * MIB
    big_programs: frozenset[str] = frozenset({"dnf", "yum", "needs-restarting"})


# Text a program prints when an allocation failed (C, C++, Python, Perl, Rust).
_OUT_OF_MEMORY = (
    "cannot allocate memory",
    "out of memory",
    "memoryerror",
    "std::bad_alloc",
    "memory allocation of",
)
_overruns: dict[str, list[str]] = {}
_overruns_lock = threading.Lock()


class CommandOverBudget(CommandError):  # noqa: N818 - named like its siblings
    """A child stopped by its CPU limit, or whose allocations failed at its memory limit."""


def take_overruns(thread_name: str) -> list[str]:
    """The budget overruns of commands run from the thread `thread_name` since the last
    call, oldest first (the runner cannot know its caller's domain, its thread can)."""
    with _overruns_lock:
        return _overruns.pop(thread_name, [])


def _record_overrun(reason: str) -> None:
    with _overruns_lock:
        _overruns.setdefault(threading.current_thread().name, []).append(reason)


@dataclass(frozen=True)
class CommandResult:
    argv: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0


class CommandRunner(Protocol):
    """Runs one command to completion; raises `CommandError` when it cannot."""

    def __call__(self, argv: Sequence[str], timeout: float) -> CommandResult: ...


class SubprocessRunner:
    """Runs commands with `subprocess`, never through a shell."""

    def __init__(
        self,
        path: str = DEFAULT_PATH,
        extra_env: Mapping[str, str] | None = None,
        limits: ChildLimits | None = None,
    ):
        # Only what programs need: parsing their output must not depend on the
        # administrator's locale (LC_ALL=C) or on variables of the calling shell.
        self._env = {"PATH": path, "LC_ALL": "C", "LANG": "C", **(extra_env or {})}
        self._limits = limits or ChildLimits()

    def __call__(self, argv: Sequence[str], timeout: float) -> CommandResult:
        args = [str(arg) for arg in argv]
        if not args:
            raise CommandError("empty command")
        try:
            child = subprocess.Popen(  # noqa: S603 - argv list, no shell
                args,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                errors="replace",
                env=self._env,
            )
        except FileNotFoundError as e:
            raise CommandNotFound(f"command not found: {args[0]}") from e
        except OSError as e:
            raise CommandError(f"cannot run {args[0]}: {e}") from e
        with child:
            self._limit(child, self._data_limit(args))
            try:
                stdout, stderr = child.communicate(timeout=timeout)
            except subprocess.TimeoutExpired as e:
                child.kill()
                child.communicate()
                raise CommandTimeout(
                    f"command timed out after {timeout:g}s: {' '.join(args)}"
                ) from e
        self._check_budget(args, child.returncode, stderr)
        return CommandResult(
            argv=tuple(args), returncode=child.returncode, stdout=stdout, stderr=stderr
        )

    def _data_limit(self, args: list[str]) -> int:
        name = args[0].rsplit("/", 1)[-1]
        limits = self._limits
        return limits.big_data_bytes if name in limits.big_programs else limits.data_bytes

    def _limit(self, child: subprocess.Popen[str], data: int) -> None:
        cpu = self._limits.cpu_seconds
        try:
            # Soft CPU limit sends SIGXCPU; one second later the hard one, SIGKILL.
            resource.prlimit(child.pid, resource.RLIMIT_CPU, (cpu, cpu + 1))
            resource.prlimit(child.pid, resource.RLIMIT_DATA, (data, data))
        except ProcessLookupError:
            return  # it already exited (and is not yet reaped): nothing left to bound
        except OSError as e:
            # A child we cannot bound is a child we must not let run.
            child.kill()
            child.communicate()
            raise CommandError(f"cannot limit {child.args!r}: {e.strerror or e}") from e

    def _check_budget(self, args: list[str], returncode: int, stderr: str) -> None:
        name = args[0].rsplit("/", 1)[-1]
        if returncode in (-signal.SIGXCPU, -signal.SIGKILL):
            reason = f"{name} stopped: over its CPU budget of {self._limits.cpu_seconds} s"
        elif returncode != 0 and any(m in stderr.lower() for m in _OUT_OF_MEMORY):
            reason = f"{name} failed at its memory budget of {self._data_limit(args) // MIB} MiB"
        else:
            return
        _record_overrun(reason)
        raise CommandOverBudget(reason)
