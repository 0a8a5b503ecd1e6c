"""Read-side queries used by the API, the metrics and the reports."""
