"""Running external commands: the `CommandRunner` seam and its subprocess implementation.

Collectors never call `subprocess` themselves: they receive a `CommandRunner`, so tests
replay recorded outputs and the real runner applies one policy everywhere (no shell,
C locale so outputs parse the same on every host, a timeout, a known PATH).
"""

from __future__ import annotations

import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from agent.errors import CommandError, CommandNotFound, CommandTimeout

# A fixed PATH rather than the caller's: the agent usually runs as root, and a PATH
# inherited from an interactive shell could make it run an unexpected program.
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


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

    def __init__(self, path: str = DEFAULT_PATH, extra_env: Mapping[str, str] | None = None):
        # Only what programs need: parsing their output must not depend on the
        # administrator's locale (LC_ALL=C) or on variables of the calling shell.
        self._env = {"PATH": path, "LC_ALL": "C", "LANG": "C", **(extra_env or {})}

    def __call__(self, argv: Sequence[str], timeout: float) -> CommandResult:
        args = [str(arg) for arg in argv]
        if not args:
            raise CommandError("empty command")
        try:
            completed = subprocess.run(  # noqa: S603 - argv list, no shell
                args,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                errors="replace",
                env=self._env,
                timeout=timeout,
                check=False,
            )
        except FileNotFoundError as e:
            raise CommandNotFound(f"command not found: {args[0]}") from e
        except subprocess.TimeoutExpired as e:
            raise CommandTimeout(f"command timed out after {timeout:g}s: {' '.join(args)}") from e
        except OSError as e:
            raise CommandError(f"cannot run {args[0]}: {e}") from e
        return CommandResult(
            argv=tuple(args),
            returncode=completed.returncode,
            stdout=completed.stdout,
            stderr=completed.stderr,
        )
