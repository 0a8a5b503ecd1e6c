"""The agent's persistent state: agent id, report sequence, first-seen dates of pending updates."""
