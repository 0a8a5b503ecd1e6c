"""Running a piece of a test as an unprivileged user, for real.

The agent usually runs as root, but administrators also run `check` as themselves:
tests of the non-root paths fork, drop to `nobody` in the child, and send the result
back as JSON through a pipe. Only root can switch users; other users already are
unprivileged and run the function directly.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from typing import Any

NOBODY = 65534


def as_unprivileged(fn: Callable[[], Any], close_fds: Callable[[], None] = lambda: None) -> Any:
    """`fn()` run as an unprivileged user; its result must be JSON-serialisable.

    `close_fds` runs in the child before dropping privileges, to let go of resources
    (sockets...) the child inherited from the test and must not appear to own.
    """
    if os.geteuid() != 0:
        return fn()
    read_end, write_end = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - runs in the child
        status = 1
        try:
            os.close(read_end)
            close_fds()
            os.setgroups([])
            os.setgid(NOBODY)
            os.setuid(NOBODY)
            os.write(write_end, json.dumps(fn()).encode())
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
    return json.loads(b"".join(chunks))
