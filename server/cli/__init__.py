"""`canhgac-server`: parse options, call the core, print. `main` is the entry point."""

from server.cli.main import main

__all__ = ["main"]
