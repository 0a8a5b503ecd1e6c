"""What the agent prints: the `check` table and JSON, run receipts, terminal-safe text."""
