"""The agent's .deb, for real: built by packaging/build-packages.sh with dpkg-deb,
installed with apt (which pulls Debian's python3 modules), run from the installed
files, its units verified by systemd, then purged with nothing left behind.

It installs a package on the machine it runs on, so it needs root (CI runs it as
root) and refuses to run where an agent is already installed or has left state: the
purge at the end would delete it.
"""

from __future__ import annotations

import json
import os
import pwd
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.collector_process import SERVER, running_collector
from tests.support import require, require_root, require_tool

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
PRIVATE = Path("/usr/lib/canhgac-agent")
STATE = Path("/var/lib/canhgac-agent")
CONFIG_DIR = Path("/etc/canhgac")
UNITS = Path("/lib/systemd/system")
DEPENDS = ("python3-psutil", "python3-requests", "python3-yaml", "python3-click")
# Wait for dpkg's lock instead of failing at once: on a shared machine (or a CI image
# running unattended-upgrades) another apt may be at work.
APT = ("apt-get", "-o", "DPkg::Lock::Timeout=300")


def run(*argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    # A clean environment, from /: nothing of the checkout or its venv may leak in.
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8"}
    env["DEBIAN_FRONTEND"] = "noninteractive"
    done = subprocess.run(
        list(argv), cwd="/", env=env, capture_output=True, text=True, timeout=600, check=False
    )
    if check:
        assert done.returncode == 0, f"{argv}: {done.returncode}\n{done.stdout}\n{done.stderr}"
    return done


def _user_exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


def _installed() -> bool:
    done = run("dpkg-query", "-W", "-f=${Status}", "canhgac-agent", check=False)
    return "installed" in done.stdout and "not-installed" not in done.stdout


@pytest.fixture(scope="module")
def deb(tmp_path_factory: pytest.TempPathFactory) -> Path:
    require_root()
    require_tool("dpkg-deb")
    require_tool("apt-get")
    clean = not _installed() and not STATE.exists() and not CONFIG_DIR.exists()
    require(clean and not _user_exists("canhgac"), "an agent is installed or left state here")
    dist = tmp_path_factory.mktemp("dist")
    done = subprocess.run(
        [str(ROOT / "packaging" / "build-packages.sh"), "deb"],
        env={**os.environ, "DIST": str(dist)},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    (package,) = dist.glob("canhgac-agent_*_all.deb")
    return package


@pytest.fixture(scope="module")
def installed(deb: Path) -> Iterator[list[Path]]:
    try:
        run(*APT, "install", "-y", "-q", "--no-install-recommends", str(deb))
        listed = run("dpkg-query", "-L", "canhgac-agent").stdout.splitlines()
        yield [Path(line) for line in listed if line.strip()]
    finally:
        if _installed():
            run(*APT, "purge", "-y", "-q", "canhgac-agent", check=False)


def test_package_metadata(deb: Path) -> None:
    fields = run("dpkg-deb", "-f", str(deb), "Depends", "Architecture").stdout
    for name in (*DEPENDS, "python3-cryptography", "python3 (>= 3.11)"):
        assert name in fields
    assert "Architecture: all" in fields
    files = run("dpkg-deb", "-c", str(deb)).stdout
    assert "./usr/lib/canhgac-agent/agent/cli/main.py" in files
    assert "./usr/lib/canhgac-agent/rules/packs/tests/" in files  # `rules test` fixtures
    assert "/server/" not in files and "site-packages" not in files
    assert "dist-packages" not in files and "__pycache__" not in files
    assert "./usr/share/doc/canhgac-agent/copyright" in files  # Debian policy


def test_installed_agent_collects_and_checks(installed: list[Path]) -> None:
    assert Path("/usr/bin/canhgac-agent") in installed
    # Debian's modules came with the package's Depends.
    for name in DEPENDS:
        assert "install ok installed" in run("dpkg-query", "-W", "-f=${Status}", name).stdout
    # The code is private: `import agent` fails for the system's python3.
    assert run("python3", "-I", "-c", "import agent", check=False).returncode == 1
    collected = run("canhgac-agent", "collect")
    document = json.loads(collected.stdout)
    assert document["schema"] == "canhgac.facts/v1" and document["seq"] == 1
    assert (STATE / "state.json").exists()
    checked = run("canhgac-agent", "check", "--lang", "en", check=False)
    assert checked.returncode in (0, 1, 3), checked.stderr
    assert "Local compliance score:" in checked.stdout
    assert "Traceback" not in checked.stderr
    vi = run("canhgac-agent", "check", check=False)
    assert "Điểm tuân thủ cục bộ:" in vi.stdout
    assert run("canhgac-agent", "rules", "test").returncode == 0


def test_installed_layout_user_conffile_and_units(installed: list[Path]) -> None:
    assert all(not str(p).startswith(("/usr/lib/python3", "/usr/local")) for p in installed)
    # Root only, as the units' StateDirectoryMode sets it at every start.
    assert STATE.is_dir() and (STATE.stat().st_mode & 0o777) == 0o700
    assert (STATE.stat().st_uid, STATE.stat().st_gid) == (0, 0)
    assert _user_exists("canhgac")
    conffiles = run("dpkg-query", "-W", "-f=${Conffiles}", "canhgac-agent").stdout
    assert "/etc/canhgac/agent.yaml" in conffiles
    service = UNITS / "canhgac-agent.service"
    assert "ExecStart=/usr/bin/canhgac-agent " in service.read_text()
    # Installed, not enabled: nothing runs before the administrator enrols the agent.
    assert not list(Path("/etc/systemd/system").glob("*.wants/canhgac-agent.*"))
    analyze = require_tool("systemd-analyze")
    units = sorted(str(p) for p in installed if p.parent == UNITS)
    assert len(units) >= 2
    done = run(analyze, "verify", "--man=no", *units, check=False)
    relevant = [
        line
        for line in (done.stdout + done.stderr).splitlines()
        if "canhgac-agent" in line and "Failed to" not in line
    ]
    assert done.returncode == 0 and relevant == [], done.stdout + done.stderr


def test_readme_install_flow_against_a_real_collector(
    installed: list[Path], tmp_path: Path
) -> None:
    """README "Install the agent", steps 2, 3 and the by-hand run of step 4, with the
    installed command, against a real collector on loopback (plain HTTP is allowed
    there only). systemctl cannot run without systemd as PID 1, so the units are
    verified above instead of started."""
    db = ["--db", f"sqlite:///{tmp_path / 'canhgac.db'}"]
    server = str(SERVER)
    with running_collector(*db, log_dir=tmp_path) as collector:
        run(server, "agency", "add", "so-deb", "--name", "Sở thử gói", *db)
        secret = run(server, "agency", "enrol-secret", "so-deb", *db).stdout.split()[-1]
        config = CONFIG_DIR / "agent.yaml"
        config.write_text(config.read_text() + f"  server: {collector.url}\n")
        secret_file = CONFIG_DIR / "enrol-secret"
        secret_file.write_text(secret + "\n")
        secret_file.chmod(0o600)
        enrol = ["--config", str(config), "--secret-file", str(secret_file), "--lang", "en"]
        enrolled = run("canhgac-agent", "enroll", *enrol)
        assert "of agency so-deb" in enrolled.stdout
        assert (STATE / "agent.token").stat().st_mode & 0o777 == 0o600
        shipped = run("canhgac-agent", "run", "--once", "--config", str(config), "--lang", "en")
        assert ": accepted; score " in shipped.stdout
        # Left in place on purpose: the purge must remove the secret file too.


def test_purge_leaves_nothing_behind(installed: list[Path]) -> None:
    owned = [p for p in installed if not p.is_dir() or str(p).startswith(str(PRIVATE))]
    run(*APT, "purge", "-y", "-q", "canhgac-agent")
    assert not _installed()
    left = [p for p in (*owned, PRIVATE, STATE, CONFIG_DIR) if p.exists()]
    assert left == []
    assert not _user_exists("canhgac")
    # Nor any enable/mask record of the units (deb-systemd-helper's state, links).
    records = [
        path
        for where in (Path("/etc/systemd/system"), Path("/var/lib/systemd"))
        for path in where.rglob("*canhgac-agent*")
    ]
    assert records == []
    assert run("getent", "group", "canhgac", check=False).returncode == 2
