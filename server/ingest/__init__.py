"""Receiving a report: payload decoding and limits, the ingest service, the per-agent rate limit."""
