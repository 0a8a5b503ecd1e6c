"""Rows the migration tests insert before upgrading: written as raw SQL, the way each
revision's code stored them, so a later change of the models cannot change what an
old database holds. What every revision stored alike is here once."""

from __future__ import annotations

# One agency and its agent token (parameters :now and :hash); unchanged since 0001.
AGENCY_AND_TOKEN = [
    "INSERT INTO agencies (id, name, created_at) VALUES ('a', 'a', :now)",
    "INSERT INTO agent_tokens (id, agency_id, name, secret_hash, created_at)"
    " VALUES ('t', 'a', 't', :hash, :now)",
]


def host_row(report_id: str, seq: int, counts: str, results_report_pk: int | None) -> str:
    """Host 1 (agent-1, web01) whose last report is `report_id` / `seq` (pk `seq`);
    `counts` the passed, failed, error and failing-by-severity columns as SQL values;
    `results_report_pk` set when the test gives one."""
    results = ", results_report_pk" if results_report_pk is not None else ""
    value = f", {results_report_pk}" if results_report_pk is not None else ""
    return (
        "INSERT INTO hosts (id, agent_id, agency_id, token_id, hostname, label, agent_version,"
        " last_report_id, last_seq, last_collected_at, last_received_at, passed_count,"
        " failed_count, error_count, failing_critical, failing_high, failing_medium,"
        f" failing_low, failing_info, last_report_pk{results}) VALUES (1, 'agent-1', 'a',"
        f" 't', 'web01', 'web01', '0.1', '{report_id}', {seq}, :now, :now, {counts},"
        f" {seq}{value})"
    )
