"""A directory on a file system with no space left, for real: a tiny tmpfs mounted
there (root needed; skipped elsewhere, failed under CI) and filled with zeros until
the kernel answers ENOSPC. Files can still be created (tmpfs counts inodes apart),
but nothing can be written into them: a disk that filled up. Used by the spool's unit
tests and the daemon's end-to-end test."""

from __future__ import annotations

import errno
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.support import mounted_tmpfs

FILLER = ".filler"  # the file that takes the space; not a spool file (no .json.gz)


@contextmanager
def full_directory(path: Path, keep: tuple[Path, ...] = ()) -> Iterator[Path]:
    """`path` on a full tmpfs; the files of `keep` copied there first (a spool that
    held reports when the disk filled)."""
    kept = {p.name: p.read_bytes() for p in keep}
    with mounted_tmpfs(path, "size=256k,mode=0700"):
        for name, data in kept.items():
            (path / name).write_bytes(data)
        block = b"\0" * 4096
        with (path / FILLER).open("wb", buffering=0) as filler:
            try:
                while True:
                    filler.write(block)
            except OSError as e:
                if e.errno != errno.ENOSPC:
                    raise
        yield path
