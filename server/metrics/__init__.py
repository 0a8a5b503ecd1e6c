"""The host-state snapshot (in memory, refreshed from the database) and Prometheus collectors."""
