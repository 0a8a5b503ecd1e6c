"""The import rules of DESIGN.md and the agent's light install, checked for real.

Each check runs a fresh interpreter with an import hook that refuses the modules a
package must not reach, then exercises the package. A forbidden import anywhere on
the path fails the test with the module's name.
"""

from __future__ import annotations

import ast
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
    missing = [
        str(path.relative_to(ROOT))
        for path in (ROOT / package).rglob("*.py")
        if path.stat().st_size > 0
        and "migrations/versions" not in str(path)
        and ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) is None
    ]
    assert missing == []


# --- Import rules between sub-packages, as data -------------------------------------
# Each unit (a sub-package or a top-level module) lists the project units it may
# import; a unit may always import itself. Anything not listed is refused, so a new
# edge between stages is a reviewed change of this table, not an accident.
# The order of the table follows the flow: lower units first.
ALLOWED_IMPORTS: dict[str, set[str]] = {
    # rules: language -> results -> engine -> policy -> tooling
    "rules": set(),
    "rules.errors": set(),
    "rules.terminal": set(),  # terminal-safe text, shared by both CLIs
    "rules.facts": {"rules.errors"},
    "rules.derived": set(),
    "rules.language": {"rules.errors"},
    "rules.results": {"rules.language"},
    "rules.engine": {"rules.errors", "rules.derived", "rules.language", "rules.results"},
    "rules.policy": {"rules.errors", "rules.language", "rules.results", "rules.engine"},
    "rules.tooling": {
        "rules.errors",
        "rules.facts",
        "rules.language",
        "rules.results",
        "rules.engine",
        "rules.policy",
        "rules.terminal",  # explain prints rules' fix commands, possibly from --rules files
    },
    # agent: collectors -> state -> document -> delivery/output -> app -> cli
    "agent": set(),
    "agent.errors": set(),
    "agent.runner": {"agent.errors"},
    "agent.collectors": {
        "agent.errors",
        "agent.runner",
        "rules.facts",
        "rules.derived",
    },
    "agent.config": {"agent.errors", "agent.collectors", "rules.language"},
    "agent.state": {"agent.errors", "agent.collectors"},
    "agent.document": {
        "agent",
        "agent.collectors",
        "agent.errors",
        "agent.runner",
        "agent.state",
        "rules.facts",
        "rules.derived",
    },
    "agent.delivery": {"agent", "agent.errors"},
    "agent.output": {
        "rules.terminal",
        "agent.errors",
        "rules.language",
        "rules.results",
        "rules.policy",
    },
    "agent.discovery": {"agent.errors", "agent.runner", "agent.collectors", "rules.facts"},
    "agent.app": {
        "agent",
        "agent.discovery",
        "agent.errors",
        "agent.runner",
        "agent.collectors",
        "agent.config",
        "agent.state",
        "agent.document",
        "agent.delivery",
        "agent.output",
        "rules.errors",
        "rules.facts",
        "rules.language",
        "rules.results",
        "rules.engine",
        "rules.policy",
    },
    "agent.worker": set(),
    "agent.daemon": {
        "rules.terminal",
        "agent",
        "agent.errors",
        "agent.worker",
        "agent.config",
        "agent.delivery",
        "agent.document",
        "agent.output",
        "agent.app",
    },
    "agent.cli": {
        "rules.terminal",
        "agent",
        "agent.daemon",
        "agent.worker",
        "agent.discovery",
        "agent.errors",
        "agent.config",
        "agent.app",
        "agent.output",
        "agent.state",
        "agent.delivery",
        "agent.collectors",
        "rules.errors",
        "rules.language",
        "rules.tooling",
    },
    # server: storage -> auth / evaluation / read / metrics -> ingest -> background
    # -> api -> cli
    "server": set(),
    "server.errors": set(),
    "server.clock": set(),
    "server.config": {"server.errors", "rules.language", "rules.policy"},
    "server.storage": {
        "server.errors",
        "server.clock",
        "rules.facts",
        "rules.derived",
        "rules.language",
        "rules.results",
        "rules.policy",
    },
    "server.auth": {"server.errors", "server.clock", "server.storage"},
    # Known vulnerabilities: feeds, the feed store (its own SQLite file), matching.
    "server.vulns": {"server.errors", "server.clock", "server.config", "rules.language"},
    # Which LAN devices are enrolled hosts: pure matching for read and evaluation.
    "server.lanmatch": {"rules.derived"},
    "server.evaluation": {
        "server.lanmatch",
        "server.vulns",
        "server.errors",
        "server.clock",
        "server.config",
        "server.storage",
        "rules.errors",
        "rules.engine",
        "rules.language",
        "rules.results",
        "rules.policy",
    },
    "server.read": {
        "server.lanmatch",
        "server.vulns",
        "server.errors",
        "server.clock",
        "server.storage",
        "rules.derived",
        "rules.language",
        "rules.results",
        "rules.policy",
    },
    "server.reports": {
        "server.errors",
        "server.read",
        "rules.language",
    },
    "server.metrics": {
        "server.vulns",
        "server.errors",
        "server.clock",
        "server.storage",
        "server.read",
        "rules.language",
        "rules.results",
        "rules.policy",
    },
    "server.ingest": {
        "server.errors",
        "server.clock",
        "server.config",
        "server.storage",
        "server.auth",
        "server.evaluation",
        "server.metrics",
        "rules.facts",
        "rules.derived",
        "rules.policy",
    },
    "server.background": {
        "server.errors",
        "server.clock",
        "server.config",
        "server.storage",
        "server.evaluation",
        "server.metrics",
        "server.ingest",
        "rules.errors",
        "rules.language",
        "rules.policy",
    },
    "server.api": {
        "server.vulns",
        "server",
        "server.errors",
        "server.clock",
        "server.config",
        "server.storage",
        "server.auth",
        "server.evaluation",
        "server.read",
        "server.reports",
        "server.metrics",
        "server.ingest",
        "server.background",
        "rules.errors",
        "rules.language",
        "rules.results",
        "rules.policy",
    },
    "server.cli": {
        "server.vulns",
        "rules.terminal",
        "server",
        "server.errors",
        "server.clock",
        "server.config",
        "server.storage",
        "server.auth",
        "server.evaluation",
        "server.read",
        "server.reports",
        "server.metrics",
        "server.ingest",
        "server.background",
        "server.api",
        "rules.errors",
        "rules.tooling",
    },
}

# Function-local imports are for heavy optional modules only (DESIGN.md): each one is
# listed here with the module it occurs in, so a new one is a reviewed decision.
LAZY_IMPORTS: set[tuple[str, str]] = {
    # the fixture documents' schema check; fastjsonschema is absent on an agent-only install
    ("rules.tooling.lint", "fastjsonschema"),
    # the audit package's XLSX format; openpyxl is needed for that format only
    ("server.reports.tabular", "openpyxl"),
    # LAN discovery's packets (the `scan` extra): never loaded when the agent starts
    ("agent.discovery.packets", "scapy"),
    ("agent.discovery.oui", "scapy"),
    # requests (~0.1 CPU-s with urllib3, http.client, email): only `run` and `enroll`
    # send anything, and every other command (`collect`, `check`...) starts without it
    ("agent.delivery.transport", "requests"),
}

PROJECT = ("agent", "rules", "server")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _unit_of(module: str) -> str | None:
    """The longest table entry that is `module` or one of its parents."""
    parts = module.split(".")
    for end in range(len(parts), 0, -1):
        candidate = ".".join(parts[:end])
        if candidate in ALLOWED_IMPORTS:
            return candidate
    return None


def _imports(tree: ast.Module, module: str) -> list[tuple[str, int, bool]]:
    """(imported module, line, whether inside a function) for every import."""
    found: list[tuple[str, int, bool]] = []

    def visit(node: ast.AST, local: bool) -> None:
        for child in ast.iter_child_nodes(node):
            inner = local or isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef)
            if isinstance(child, ast.Import):
                found.extend((alias.name, child.lineno, local) for alias in child.names)
            elif isinstance(child, ast.ImportFrom) and child.module and child.level == 0:
                found.append((child.module, child.lineno, local))
                # `from server.cli import admin` imports the submodule server.cli.admin
                found.extend(
                    (f"{child.module}.{alias.name}", child.lineno, local) for alias in child.names
                )
            visit(child, inner)

    visit(tree, False)
    return found


def _project_modules() -> list[tuple[str, Path]]:
    return [
        (_module_name(path), path)
        for package in PROJECT
        for path in sorted((ROOT / package).rglob("*.py"))
        if "migrations" not in path.parts
    ]


def test_every_module_belongs_to_a_unit_of_the_import_table() -> None:
    orphans = [name for name, _ in _project_modules() if _unit_of(name) is None]
    assert orphans == [], "add these modules' units to ALLOWED_IMPORTS"


def test_sub_packages_import_only_along_the_flow() -> None:
    known = {name for name, _ in _project_modules()}
    violations = set()
    for name, path in _project_modules():
        unit = _unit_of(name)
        assert unit is not None
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for imported, line, _local in _imports(tree, name):
            if imported.split(".")[0] not in PROJECT:
                continue
            parent = imported.rsplit(".", 1)[0]
            # `from x import name`: when x.name is no module, x is what is imported
            source = parent if imported not in known and parent in known else imported
            target = _unit_of(source)
            if target is None or target == unit or target in ALLOWED_IMPORTS[unit]:
                continue
            violations.add(f"{path.relative_to(ROOT)}:{line}: {unit} imports {target}")
    assert sorted(violations) == []


def test_function_local_imports_are_only_the_listed_heavy_modules() -> None:
    local = {
        (name, imported.split(".")[0])
        for name, path in _project_modules()
        for imported, _line, is_local in _imports(ast.parse(path.read_text("utf-8")), name)
        if is_local
    }
    assert sorted(local - LAZY_IMPORTS) == [], (
        "a function-local import must be a heavy optional module listed in LAZY_IMPORTS"
    )
