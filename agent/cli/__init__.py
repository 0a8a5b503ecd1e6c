"""`canhgac-agent`: parse options, call `agent.app`, print. `main` is the entry point."""

from agent.cli.main import main

__all__ = ["main"]
