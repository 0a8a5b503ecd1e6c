"""The import rules of DESIGN.md and the agent's light install, checked for real.

Each check runs a fresh interpreter with an import hook that refuses the modules a
package must not reach, then exercises the package. A forbidden import anywhere on
the path fails the test with the module's name.
"""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SERVER_LIBRARIES = [
    "fastapi",
    "uvicorn",
    "starlette",
    "pydantic",
    "sqlalchemy",
    "alembic",
    "prometheus_client",
    "fastjsonschema",
]

GUARD = """
import importlib.abc, sys
FORBIDDEN = {forbidden!r}
class Refuse(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in FORBIDDEN:
            raise ImportError(f"forbidden import: {{name}}")
        return None
sys.meta_path.insert(0, Refuse())
"""


def run_guarded(forbidden: list[str], body: str) -> subprocess.CompletedProcess[str]:
    code = GUARD.format(forbidden=forbidden) + body
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_rules_imports_neither_agent_nor_server() -> None:
    done = run_guarded(
        ["agent", "server", "psutil", "requests", *SERVER_LIBRARIES],
        "import rules.tooling.cli, rules.engine, rules.language.loader, rules.policy.scoring, rules.facts\n"
        "from rules.language.loader import load_rules, builtin_packs_dir\n"
        "load_rules([builtin_packs_dir()])\n",
    )
    assert done.returncode == 0, done.stderr


def test_agent_runs_without_server_dependencies(tmp_path: Path) -> None:
    out = tmp_path / "facts.json"
    done = run_guarded(
        ["server", *SERVER_LIBRARIES],
        "from agent.cli.main import main\n"
        f"main(['collect', '--output', {str(out)!r}, '--state-dir', {str(tmp_path / 'state')!r}],"
        " standalone_mode=False)\n"
        "try:\n"
        f"    main(['check', '--facts', {str(out)!r}, '--format', 'json'], standalone_mode=False)\n"
        "except SystemExit as e:\n"
        "    print('check exit', e.code)\n",  # 1/3 = findings on this host, not a crash
    )
    assert done.returncode == 0, done.stderr
    assert "forbidden import" not in done.stderr
    assert out.stat().st_size > 0


def test_server_does_not_import_agent_code() -> None:
    done = run_guarded(
        ["agent", "psutil", "scapy"],
        "import server.cli.main, server.api, server.ingest.service, server.storage.report_store, server.metrics.exporter\n",
    )
    assert done.returncode == 0, done.stderr


def test_agent_extra_does_not_pull_server_dependencies() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    agent_side = " ".join(
        project["dependencies"] + project["optional-dependencies"]["agent"]
    ).lower()
    for library in [*SERVER_LIBRARIES, "prometheus-client"]:
        assert library not in agent_side


@pytest.mark.parametrize("package", ["agent", "rules", "server"])
def test_every_module_has_a_docstring(package: str) -> None:
    import ast

    missing = [
        str(path.relative_to(ROOT))
        for path in (ROOT / package).rglob("*.py")
        if path.stat().st_size > 0
        and "migrations/versions" not in str(path)
        and ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) is None
    ]
    assert missing == []
