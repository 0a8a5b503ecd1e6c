"""`canhgac-server` in an agent-only install says which extra to install.

A real interpreter without the collector's dependencies: a fresh virtual environment
(no system site-packages) that sees the checkout's code and, through symlinks, only
the packages every install has (click, pyyaml). It then runs what the console script
runs. No import is patched: FastAPI and friends are really absent there.
"""

from __future__ import annotations

import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

import click
import yaml

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = "import sys; from server.cli.main import main; sys.exit(main())"


def _agent_only_python(tmp_path: Path) -> Path:
    env = tmp_path / "venv"
    venv.EnvBuilder(with_pip=False, system_site_packages=False).create(env)
    shared = tmp_path / "shared"
    shared.mkdir()
    for module in (click, yaml):
        source = Path(module.__file__ or "").parent
        (shared / source.name).symlink_to(source)
    python = env / "bin" / "python"
    purelib = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    Path(purelib, "canhgac.pth").write_text(f"{ROOT}\n{shared}\n")
    return python


def test_agent_only_install_names_the_extra(tmp_path: Path) -> None:
    python = _agent_only_python(tmp_path)
    probe = subprocess.run([str(python), "-c", "import fastapi"], capture_output=True, check=False)
    assert probe.returncode == 1  # really absent
    done = subprocess.run(
        [str(python), "-c", SCRIPT],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 2
    assert (
        "pip install 'canhgac[server]'" in lines[0] and "bản cài đặt này chỉ có tác tử" in lines[0]
    )
    assert "agent-only install" in lines[1]
    # The agent itself still works there.
    agent = subprocess.run(
        [str(python), "-c", "import rules.language.loader, agent.output.check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert agent.returncode == 0, agent.stderr


def test_full_install_imports_main() -> None:
    assert sysconfig.get_paths()["purelib"]  # this environment has the server extra
    done = subprocess.run(
        [sys.executable, "-c", "from server.cli import main; print(main.name)"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0 and done.stdout.strip() == "main", done.stderr
