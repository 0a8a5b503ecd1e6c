"""The built package works outside the source tree.

The tests and `make lint` run the editable install, which reads every file from the
checkout, so a file missing from the wheel's package data would only show once a user
installed the package. Here the wheel is built from a copy of the sources, installed
into a fresh virtual environment, and its commands run from a directory outside any
checkout: the rule fixtures (`rules lint`, `rules test`) and the collector's migrations
(`db upgrade`) must come from the installed package.

The fresh environment takes the dependencies from this one (a .pth file naming this
environment's site-packages, and `--no-deps --no-index`), so nothing is downloaded for
the install. Building needs setuptools>=77: this environment's when it has it,
otherwise pip's isolated build fetches it from the package index.
"""

from __future__ import annotations

import importlib.metadata
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support import require

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
SOURCES = ("agent", "rules", "server", "pyproject.toml", "README.md")
# Data files the commands read at run time, by their path inside the wheel.
DATA_GLOBS = (
    "rules/packs/*.yaml",
    "rules/packs/tests/*.yaml",
    "rules/frameworks/*.yaml",
    "rules/schema/*.json",
    "server/storage/migrations/*.py",
    "server/storage/migrations/*.mako",
    "server/storage/migrations/versions/*.py",
)
NETWORK_TROUBLE = ("No matching distribution", "Could not find a version", "connection")


@dataclass(frozen=True)
class Installed:
    wheel: Path
    venv: Path
    outside: Path  # a working directory outside any checkout

    def run(self, *argv: str) -> subprocess.CompletedProcess[str]:
        # No PYTHONPATH: only the installed package (and the shared dependencies).
        env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        return subprocess.run(
            [str(self.venv / "bin" / argv[0]), *argv[1:]],
            cwd=self.outside,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )


def _can_build_offline() -> bool:
    try:
        setuptools = importlib.metadata.version("setuptools")
        importlib.metadata.version("wheel")
    except importlib.metadata.PackageNotFoundError:
        return False
    return int(setuptools.split(".")[0]) >= 77


def build_wheel(sources: Path, dist: Path) -> Path:
    command = [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(dist)]
    if _can_build_offline():
        command.append("--no-build-isolation")
    done = subprocess.run(
        [*command, str(sources)], capture_output=True, text=True, timeout=600, check=False
    )
    output = done.stdout + done.stderr
    if done.returncode != 0 and any(t in output for t in NETWORK_TROUBLE):
        require(False, f"building the wheel needs setuptools>=77 from the package index: {output}")
    assert done.returncode == 0, output
    (wheel,) = dist.glob("canhgac-*.whl")
    return wheel


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Installed]:
    base = tmp_path_factory.mktemp("wheel")
    sources = base / "src"
    sources.mkdir()
    ignored = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info", "build")
    for name in SOURCES:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, sources / name, ignore=ignored)
        else:
            shutil.copy2(ROOT / name, sources / name)
    wheel = build_wheel(sources, base / "dist")

    venv = base / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    # After the venv's own site-packages: the installed canhgac wins over this
    # environment's editable one (whose finder .pth is not processed from here).
    shared = {sysconfig.get_path("purelib"), sysconfig.get_path("platlib")}
    (Path(site) / "canhgac-test-shared-deps.pth").write_text("\n".join(sorted(shared)) + "\n")
    subprocess.run(
        [
            *(sys.executable, "-m", "pip", "--python", str(python)),
            *("install", "--no-deps", "--no-index", "-q", str(wheel)),
        ],
        capture_output=True,
        check=True,
        timeout=300,
    )
    outside = base / "elsewhere"
    outside.mkdir()
    yield Installed(wheel, venv, outside)


def test_the_wheel_holds_every_data_file(installed: Installed) -> None:
    names = set(zipfile.ZipFile(installed.wheel).namelist())
    expected = {
        path.relative_to(ROOT).as_posix() for pattern in DATA_GLOBS for path in ROOT.glob(pattern)
    }
    assert any(name.startswith("rules/packs/tests/") for name in expected)
    assert sorted(expected - names) == []


def test_the_installed_package_is_the_one_running(installed: Installed) -> None:
    done = installed.run(
        "python", "-c", "import agent, rules, server; print(agent.__file__, rules.__file__)"
    )
    assert done.returncode == 0, done.stderr
    for module_file in done.stdout.split():
        assert Path(module_file).is_relative_to(installed.venv), done.stdout


def test_installed_rules_lint_and_test(installed: Installed) -> None:
    lint = installed.run("canhgac-agent", "rules", "lint")
    assert lint.returncode == 0, lint.stdout + lint.stderr
    tested = installed.run("canhgac-agent", "rules", "test")
    assert tested.returncode == 0, tested.stdout + tested.stderr


def test_installed_collector_migrates_a_database(installed: Installed) -> None:
    database = installed.outside / "canhgac.db"
    done = installed.run("canhgac-server", "db", "upgrade", "--db", f"sqlite:///{database}")
    assert done.returncode == 0, done.stdout + done.stderr
    assert database.exists()
