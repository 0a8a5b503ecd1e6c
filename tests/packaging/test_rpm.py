"""The agent's .rpm: built by packaging/build-packages.sh with rpmbuild (Debian's
`rpm` package), its file list, dependencies, configuration files and scripts read
back with rpm itself. It cannot be installed here (a Debian machine); the .deb test
installs the same staged tree."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from tests.support import require_tool

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


def rpm(*argv: str) -> str:
    done = subprocess.run(
        [require_tool("rpm"), *argv], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.fixture(scope="module")
def package(tmp_path_factory: pytest.TempPathFactory) -> str:
    require_tool("rpmbuild")
    dist = tmp_path_factory.mktemp("dist")
    done = subprocess.run(
        [str(ROOT / "packaging" / "build-packages.sh"), "rpm"],
        env={**os.environ, "DIST": str(dist)},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    (built,) = dist.glob("canhgac-agent-*.noarch.rpm")
    return str(built)


def test_files_are_private_and_complete(package: str) -> None:
    files = rpm("-qlp", package).splitlines()
    assert "/usr/bin/canhgac-agent" in files
    assert "/usr/lib/canhgac-agent/agent/cli/main.py" in files
    assert "/usr/lib/canhgac-agent/rules/packs/ssh.yaml" in files
    assert any(f.startswith("/usr/lib/canhgac-agent/rules/packs/tests/") for f in files)
    assert "/usr/lib/systemd/system/canhgac-agent.service" in files
    assert "/usr/lib/systemd/system/canhgac-agent.timer" in files
    assert "/usr/lib/systemd/system/canhgac-agent-once.service" in files  # what the timer runs
    for forbidden in ("/server/", "site-packages", "__pycache__", "/usr/local/"):
        assert not [f for f in files if forbidden in f], forbidden
    assert rpm("-qp", "--configfiles", package).split() == ["/etc/canhgac/agent.yaml"]


def test_depends_on_the_distributions_python_modules(package: str) -> None:
    requires = {line.strip() for line in rpm("-qp", "--requires", package).splitlines()}
    for name in (
        "python3 >= 3.11",
        "python3-psutil",
        "python3-requests",
        "python3-pyyaml",
        "python3-click",
        "python3-cryptography",
    ):
        assert name in requires
    # Nothing bundled: no generated requirement on a private library.
    assert not [r for r in requires if "canhgac" in r]


def test_scripts_create_and_remove_the_user_and_state(package: str) -> None:
    scripts = rpm("-qp", "--scripts", package)
    assert "useradd -r -g canhgac" in scripts
    assert "install -d -m 0700 -o root -g root /var/lib/canhgac-agent" in scripts
    assert "rm -rf /var/lib/canhgac-agent" in scripts and "userdel canhgac" in scripts
    # Installed, not started: enable comes after enrolment.
    assert "systemctl enable" not in scripts and "systemctl start" not in scripts


def test_payload_runs_with_the_systems_python(package: str, tmp_path: Path) -> None:
    """The payload (read with rpm2archive) is the agent itself: its unit starts
    /usr/bin/canhgac-agent, and its code runs. This machine is not RHEL, so the
    interpreter is this environment's (it has the same third-party modules); the
    code imported is the payload's, checked below."""
    with Path(package).open("rb") as rpm_file:
        archive = subprocess.run(
            [require_tool("rpm2archive"), "-"],
            stdin=rpm_file,
            capture_output=True,
            timeout=60,
            check=True,
        ).stdout
    with tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as tar:
        tar.extractall(tmp_path, filter="data")
    unit = (tmp_path / "usr/lib/systemd/system/canhgac-agent.service").read_text()
    assert "ExecStart=/usr/bin/canhgac-agent " in unit and "/usr/local/" not in unit
    launcher = (tmp_path / "usr/bin/canhgac-agent").read_text()
    assert launcher.startswith("#!/usr/bin/python3 -I\n")
    assert 'sys.path.insert(0, "/usr/lib/canhgac-agent")' in launcher
    # The launcher's code, pointed at the extracted tree instead of /usr/lib.
    private = tmp_path / "usr/lib/canhgac-agent"
    code = launcher.replace("/usr/lib/canhgac-agent", str(private))
    script = tmp_path / "launcher.py"
    script.write_text(
        code.replace(
            "from agent.cli.main", "import agent\nprint(agent.__file__)\nfrom agent.cli.main"
        )
    )
    done = subprocess.run(
        [sys.executable, "-I", str(script), "rules", "list"],
        cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[0] == str(private / "agent" / "__init__.py")
    assert "SSH-ROOT-LOGIN" in done.stdout
