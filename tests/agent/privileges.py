"""Running a piece of a test as an unprivileged user, for real.

The agent usually runs as root, but administrators also run `check` as themselves:
tests of the non-root paths fork, drop to `nobody` in the child, and send the result
back as JSON through a pipe. Only root can switch users; other users already are
unprivileged and run the function directly.

The child must not need to read anything from disk once it is `nobody`: the checkout
may sit in a directory other users cannot traverse (a clone under /root, Debian 12's
0700 home directories), and so may the interpreter's standard library (pyenv under
/root). So everything the child could import on first use is imported beforehand, in
the parent (`preload`), and test data the child uses is read before the fork (see
tests/agent/recordings.py). `tests/agent/test_unprivileged_anywhere.py` proves it by
running these tests from a copy of the tree in a 0700 directory.
"""

from __future__ import annotations

import functools
import importlib
import json
import os
import pkgutil
import sys
import traceback
from collections.abc import Callable, Iterable
from typing import Any

NOBODY = 65534

# The code under test: a module imported lazily by another (or first reached by the
# function the child runs) is loaded from the checkout, which `nobody` may not read.
PACKAGES = ("agent", "rules")

# Standard-library modules the standard library itself imports on first use, in code
# the collectors run: `time.strptime` (`_strptime`), `Path.owner()`/`group()` and
# `os.path.expanduser` (`pwd`, `grp`), and codecs looked up by name at decode time.
STDLIB_ON_FIRST_USE = (
    "_strptime",
    "pwd",
    "grp",
    "encodings.ascii",
    "encodings.idna",
    "encodings.latin_1",
    "encodings.utf_8_sig",
    "stringprep",
    "unicodedata",
)


@functools.cache
def _package_modules(package: str) -> tuple[str, ...]:
    root = importlib.import_module(package)
    paths = getattr(root, "__path__", None)
    if paths is None:
        return (package,)
    return (package, *sorted(m.name for m in pkgutil.walk_packages(paths, f"{package}.")))


def preload(modules: Iterable[str] = ()) -> None:
    """Import the code under test, the standard library's on-first-use modules and
    `modules`, so a child that dropped privileges finds them in `sys.modules`."""
    for package in PACKAGES:
        for name in _package_modules(package):
            importlib.import_module(name)
    for name in (*STDLIB_ON_FIRST_USE, *modules):
        importlib.import_module(name)


def as_unprivileged(
    fn: Callable[[], Any],
    close_fds: Callable[[], None] = lambda: None,
    preload_modules: Iterable[str] = (),
) -> Any:
    """`fn()` run as an unprivileged user; its result must be JSON-serialisable.

    `close_fds` runs in the child before dropping privileges, to let go of resources
    (sockets...) the child inherited from the test and must not appear to own.
    `preload_modules` names modules `fn` imports on first use beyond the ones
    `preload` always imports (the child cannot read them from disk).
    A child that fails sends its traceback back, and the test fails with it.
    """
    if os.geteuid() != 0:
        return fn()
    preload(preload_modules)
    read_end, write_end = os.pipe()
    sys.stdout.flush()
    sys.stderr.flush()
    child = os.fork()
    if child == 0:  # pragma: no cover - runs in the child
        status = 1
        try:
            os.close(read_end)
            close_fds()
            os.setgroups([])
            os.setgid(NOBODY)
            os.setuid(NOBODY)
            try:
                answer = {"result": fn()}
            except BaseException:
                answer = {"error": traceback.format_exc()}
            data = memoryview(json.dumps(answer).encode())
            while data:
                data = data[os.write(write_end, data) :]
            status = 0
        finally:
            os._exit(status)
    os.close(write_end)
    chunks = []
    while chunk := os.read(read_end, 65536):
        chunks.append(chunk)
    os.close(read_end)
    _, status = os.waitpid(child, 0)
    assert os.waitstatus_to_exitcode(status) == 0, "the unprivileged child failed"
    answer = json.loads(b"".join(chunks))
    assert "error" not in answer, f"the unprivileged child failed:\n{answer['error']}"
    return answer["result"]
