"""`canhgac-server`: parse options, call the core, print. `main` is the entry point.

The wheel carries the collector's code in every install, but its dependencies only
with the `server` extra: in an agent-only install (`pip install 'canhgac[agent]'`)
the first import of FastAPI, SQLAlchemy and the like fails. That case gets a two-line
answer naming the extra to install instead of a traceback; any other import error is
a bug and is raised as it is.
"""

import sys

# Top-level modules that come only with the `server` extra (and what they pull in).
SERVER_ONLY_MODULES = frozenset(
    {
        "fastapi",
        "starlette",
        "uvicorn",
        "pydantic",
        "pydantic_core",
        "sqlalchemy",
        "alembic",
        "prometheus_client",
        "fastjsonschema",
        "anyio",
    }
)
EXIT_NOT_INSTALLED = 2

try:
    from server.cli.main import main
except ImportError as e:
    missing = (e.name or "").split(".", 1)[0]
    if missing not in SERVER_ONLY_MODULES:
        raise
    sys.stderr.write(
        f"canhgac-server: bản cài đặt này chỉ có tác tử (thiếu mô-đun {missing});"
        " cài thêm phần máy chủ thu thập: pip install 'canhgac[server]'\n"
        f"canhgac-server: this is an agent-only install (module {missing} is missing);"
        " install the collector's extra: pip install 'canhgac[server]'\n"
    )
    # Exiting here, at import, is what makes the console script (which imports
    # server.cli.main before calling anything) end with this message.
    raise SystemExit(EXIT_NOT_INSTALLED) from e

__all__ = ["main"]
