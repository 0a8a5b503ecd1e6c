"""The agent as an unprivileged user runs it, from any checkout: a world-readable copy.

The discovery tests run `canhgac-agent discover` as user 65534 inside a network
namespace, so it must be a new process (`ip netns exec ... setpriv ...`), unlike the
collector tests that fork after importing everything (tests/agent/privileges.py).
From a checkout that user cannot read (a clone under /root, mode 0700) the venv's
script, its packages and a pyenv interpreter under /root are out of its reach. So the
agent's packages and the distributions it imports are copied, once per session, into
a temporary directory every user can read, and run by the system's python3 (the
distributions' compiled parts are built for this Python minor version, as the
system's is: both are 3.11 here and in CI).
"""

from __future__ import annotations

import atexit
import functools
import importlib.metadata
import os
import shutil
import tempfile
from pathlib import Path

from tests.support import require

ROOT = Path(__file__).resolve().parents[3]
PACKAGES = ("agent", "rules")
# What `canhgac-agent discover` imports, with what those import (pyproject's base,
# agent and scan extras).
DISTRIBUTIONS = (
    "click",
    "PyYAML",
    "psutil",
    "requests",
    "urllib3",
    "idna",
    "certifi",
    "charset-normalizer",
    "cryptography",
    "cffi",
    "pycparser",
    "scapy",
)
_MAIN = (
    "import sys; sys.path.insert(0, {stage!r}); sys.argv[0] = 'canhgac-agent';"
    " from agent.cli.main import main; sys.exit(main())"
)


@functools.cache
def unprivileged_agent() -> tuple[str, ...]:
    """The command line that runs the agent from the world-readable copy (prefix it
    with setpriv)."""
    python = shutil.which("python3", path="/usr/bin:/bin")
    require(python is not None, "no system python3 to run the agent as another user")
    assert python is not None
    stage = Path(tempfile.mkdtemp(prefix="canhgac-agent-as-nobody-"))
    atexit.register(shutil.rmtree, stage, True)
    for package in PACKAGES:
        shutil.copytree(
            ROOT / package, stage / package, ignore=shutil.ignore_patterns("__pycache__")
        )
    for name in DISTRIBUTIONS:
        distribution = importlib.metadata.distribution(name)
        for file in distribution.files or ():
            if ".." in file.parts or "__pycache__" in file.parts:
                continue  # scripts installed beside the venv, bytecode
            source = Path(str(distribution.locate_file(file)))
            if source.is_file():
                target = stage / file
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(source, target)
    for directory, _dirs, files in os.walk(stage):
        os.chmod(directory, 0o755)
        for name in files:
            os.chmod(os.path.join(directory, name), 0o644)
    return (python, "-I", "-c", _MAIN.format(stage=str(stage)))
