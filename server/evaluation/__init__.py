"""Judging facts on the collector: the loaded policy and re-evaluation when it changes."""
