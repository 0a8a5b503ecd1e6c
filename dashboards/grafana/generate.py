"""Writes the canhgac Grafana dashboards (JSON) from this one description.

Run `python dashboards/grafana/generate.py` after editing; the JSON files are
committed, and tests/dashboards/test_grafana.py checks they match this script and
that every query returns data from a real Prometheus
(tests/e2e/test_prometheus_dashboards.py).
Titles are Vietnamese (the team's language); descriptions are English. The data
source is the `DS_PROMETHEUS` input on import and a variable of the same name when
provisioned, so both ways work unchanged.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
DS = {"type": "prometheus", "uid": "${DS_PROMETHEUS}"}
AGENCY = 'agency=~"$agency"'
HOST = 'agency=~"$agency",host=~"$host"'

Panel = dict[str, Any]
# Severity label values are English ids; legends show the Vietnamese word. PromQL
# copies each into a `muc_do` label (label_replace), so one query still returns every
# severity present and the legend reads "{{muc_do}}".
SEVERITY_VI = (
    ("critical", "nghiêm trọng"),
    ("high", "cao"),
    ("medium", "trung bình"),
    ("low", "thấp"),
    ("info", "thông tin"),
)


def severity_vi(expr: str) -> str:
    for severity, word in SEVERITY_VI:
        expr = f'label_replace({expr}, "muc_do", "{word}", "severity", "{severity}")'
    return expr


def panel(
    kind: str,
    title: str,
    description: str,
    targets: list[tuple[str, str]],
    *,
    width: int = 12,
    height: int = 8,
    unit: str | None = None,
    instant: bool = False,
) -> Panel:
    built: Panel = {
        "type": kind,
        "title": title,
        "description": description,
        "datasource": DS,
        "gridPos": {"w": width, "h": height},
        "targets": [
            {
                "datasource": DS,
                "refId": chr(ord("A") + index),
                "expr": expr,
                "legendFormat": legend,
                "instant": instant,
                "range": not instant,
            }
            for index, (expr, legend) in enumerate(targets)
        ],
        "fieldConfig": {"defaults": {"unit": unit} if unit else {}, "overrides": []},
        "options": {},
    }
    if kind == "table":
        built["transformations"] = [{"id": "merge", "options": {}}]
    return built


def variable(name: str, label: str, query: str, *, multi: bool = True) -> dict[str, Any]:
    return {
        "name": name,
        "label": label,
        "type": "query",
        "datasource": DS,
        "query": {"query": query, "refId": f"{name}-values"},
        "definition": query,
        "refresh": 2,
        "multi": multi,
        "includeAll": True,
        "allValue": ".*",
        "current": {"text": "All", "value": "$__all"},
        "sort": 1,
    }


DATASOURCE_VARIABLE = {
    "name": "DS_PROMETHEUS",
    "label": "Nguồn dữ liệu",
    "type": "datasource",
    "query": "prometheus",
    "hide": 0,
}
AGENCY_VARIABLE = variable("agency", "Đơn vị", "label_values(canhgac_host_info, agency)")
HOST_VARIABLE = variable(
    "host", "Máy chủ", f"label_values(canhgac_host_info{{{AGENCY}}}, host)", multi=False
)


def dashboard(
    uid: str, title: str, description: str, panels: list[Panel], variables: list[dict[str, Any]]
) -> dict[str, Any]:
    x = y = 0
    row_height = 0
    for index, item in enumerate(panels, start=1):
        grid = item["gridPos"]
        if x + grid["w"] > 24:
            x, y, row_height = 0, y + row_height, 0
        grid.update(x=x, y=y)
        x += grid["w"]
        row_height = max(row_height, grid["h"])
        item["id"] = index
    return {
        "__inputs": [
            {
                "name": "DS_PROMETHEUS",
                "label": "Prometheus",
                "description": "The Prometheus that scrapes the canhgac collector (job canhgac).",
                "type": "datasource",
                "pluginId": "prometheus",
                "pluginName": "Prometheus",
            }
        ],
        "__requires": [
            {"type": "datasource", "id": "prometheus", "name": "Prometheus", "version": "1.0.0"}
        ],
        "uid": uid,
        "title": title,
        "description": description,
        "tags": ["canhgac"],
        "timezone": "browser",
        "schemaVersion": 39,
        "version": 1,
        "editable": True,
        "refresh": "1m",
        "time": {"from": "now-7d", "to": "now"},
        "templating": {"list": [DATASOURCE_VARIABLE, *variables]},
        "annotations": {"list": []},
        "links": [
            {"type": "dashboards", "tags": ["canhgac"], "title": "canhgac", "asDropdown": True}
        ],
        "panels": panels,
    }


def lan_unmanaged() -> Panel:
    # Only agencies with a discovering host have the series: an agency without one
    # shows no bar (not assessed), never a 0. max: replicas expose the same count.
    return panel(
        "bargauge",
        "Thiết bị chưa được quản lý trong mạng nội bộ",
        "Devices on each agency's LAN whose MAC and IP are no enrolled host's (LAN "
        "discovery, merged over the agency's discovering hosts); the devices: "
        "GET /api/v1/lan/devices?managed=false.",
        [
            (
                f'sort_desc(max by (agency) (canhgac_lan_devices{{managed="false",{AGENCY}}}))',
                "{{agency}}",
            )
        ],
        instant=True,
    )


def dashboards() -> dict[str, dict[str, Any]]:
    province = dashboard(
        "canhgac-province",
        "canhgac — Tổng quan toàn tỉnh",
        "Province overview: agencies ranked by score, score trend, stale hosts, critical "
        "failures, certificates expiring soon, security updates pending.",
        [
            panel(
                "stat",
                "Máy chủ ngừng báo cáo",
                "Hosts that stopped reporting.",
                [(f'sum(canhgac:agency_hosts:max{{state="stale",{AGENCY}}})', "")],
                width=6,
            ),
            panel(
                "stat",
                "Quy tắc nghiêm trọng không đạt",
                "Critical rule failures, summed over hosts.",
                [(f'sum(canhgac:agency_rules_failing:sum{{severity="critical",{AGENCY}}})', "")],
                width=6,
            ),
            panel(
                "stat",
                "Chứng thư số hết hạn trong 30 ngày",
                "Hosts whose earliest certificate expires within 30 days.",
                [(f"count(canhgac:host_cert_expiry_days:min{{{AGENCY}}} < 30)", "")],
                width=6,
            ),
            panel(
                "stat",
                "Bản cập nhật bảo mật đang chờ",
                "Security updates pending, summed over hosts.",
                [(f'sum(canhgac:agency_updates_pending:sum{{class="security",{AGENCY}}})', "")],
                width=6,
            ),
            panel(
                "bargauge",
                "Xếp hạng đơn vị theo điểm tuân thủ",
                "Agencies ranked by pooled compliance score (docs/scoring.md).",
                [(f"sort_desc(canhgac:agency_score_ratio:max{{{AGENCY}}})", "{{agency}}")],
                unit="percentunit",
                instant=True,
            ),
            panel(
                "timeseries",
                "Diễn biến điểm tuân thủ",
                "Pooled agency score over time.",
                [(f"canhgac:agency_score_ratio:max{{{AGENCY}}}", "{{agency}}")],
                unit="percentunit",
            ),
            panel(
                "bargauge",
                "Yêu cầu chưa đáp ứng đầy đủ theo đơn vị",
                "Framework requirements whose pooled score is below 100 %, per agency.",
                [
                    (
                        "sort_desc(count by (agency) "
                        f"(canhgac:framework_requirement_ratio:max{{{AGENCY}}} < 1))",
                        "{{agency}}",
                    )
                ],
                instant=True,
            ),
            panel(
                "table",
                "Quy tắc không đạt trên nhiều máy chủ nhất",
                "Rules failing on the most hosts across the selected agencies.",
                [
                    (
                        "topk(20, sum by (rule_id) "
                        f'(canhgac:rule_hosts:max{{result="fail",{AGENCY}}}))',
                        "số máy chủ không đạt",
                    )
                ],
                instant=True,
            ),
            lan_unmanaged(),  # a new dict each: dashboard() sets its position
        ],
        [AGENCY_VARIABLE],
    )
    agency = dashboard(
        "canhgac-agency",
        "canhgac — Đơn vị",
        "One agency: its hosts with score, failing rules, patch state and last report.",
        [
            panel(
                "table",
                "Máy chủ của đơn vị",
                "Hosts: score, failing rules, security updates pending, last report.",
                [
                    (f"canhgac:host_score_ratio:max{{{AGENCY}}}", "điểm"),
                    (
                        f"sum by (host, agency) (canhgac_host_rules_failing{{{AGENCY}}})",
                        "quy tắc không đạt",
                    ),
                    (
                        "max by (host, agency) "
                        f'(canhgac_host_updates_pending{{class="security",{AGENCY}}})',
                        "cập nhật bảo mật",
                    ),
                    (
                        "max by (host, agency) "
                        f"(canhgac_host_last_report_timestamp_seconds{{{AGENCY}}}) * 1000",
                        "báo cáo gần nhất",
                    ),
                ],
                width=24,
                height=12,
                instant=True,
            ),
            panel(
                "timeseries",
                "Quy tắc không đạt theo mức độ",
                "Failing rules by severity.",
                [
                    (
                        severity_vi(f"canhgac:agency_rules_failing:sum{{{AGENCY}}}"),
                        "{{agency}} {{muc_do}}",
                    )
                ],
            ),
            panel(
                "table",
                "Quy tắc không đạt trên nhiều máy chủ nhất",
                "Rules failing on the most hosts of the agency (canhgac_rule_hosts).",
                [
                    (
                        "topk(20, sum by (rule_id) "
                        f'(canhgac:rule_hosts:max{{result="fail",{AGENCY}}}))',
                        "số máy chủ không đạt",
                    )
                ],
                instant=True,
            ),
            panel(
                "table",
                "Mức đáp ứng yêu cầu theo khung",
                "Requirements least met first: the score of each framework requirement's "
                "mapped rules pooled over the agency's hosts (docs/scoring.md).",
                [
                    (
                        f"bottomk(30, canhgac:framework_requirement_ratio:max{{{AGENCY}}})",
                        "mức đáp ứng",
                    )
                ],
                unit="percentunit",
                instant=True,
            ),
            panel(
                "stat",
                "Máy chủ đang báo cáo / ngừng báo cáo",
                "Hosts reporting and stale.",
                [
                    (
                        f'sum(canhgac:agency_hosts:max{{state="reporting",{AGENCY}}})',
                        "đang báo cáo",
                    ),
                    (f'sum(canhgac:agency_hosts:max{{state="stale",{AGENCY}}})', "ngừng báo cáo"),
                ],
            ),
            lan_unmanaged(),  # a new dict each: dashboard() sets its position
        ],
        [AGENCY_VARIABLE],
    )
    host = dashboard(
        "canhgac-host",
        "canhgac — Máy chủ",
        "One host: score history, failing rules, certificates, exposed services, updates.",
        [
            panel(
                "timeseries",
                "Diễn biến điểm tuân thủ",
                "The host's score over time.",
                [(f"canhgac:host_score_ratio:max{{{HOST}}}", "{{host}}")],
                unit="percentunit",
            ),
            panel(
                "bargauge",
                "Quy tắc không đạt theo mức độ",
                "Failing rules by severity.",
                [
                    (
                        severity_vi(f"max by (severity) (canhgac_host_rules_failing{{{HOST}}})"),
                        "{{muc_do}}",
                    )
                ],
                instant=True,
            ),
            panel(
                "stat",
                "Số ngày đến khi chứng thư số hết hạn",
                "Days until the host's earliest certificate expires.",
                [(f"canhgac:host_cert_expiry_days:min{{{HOST}}}", "")],
                width=6,
            ),
            panel(
                "stat",
                "Dịch vụ mở ra mạng",
                "Distinct (protocol, port) bound to non-loopback addresses.",
                [(f"max(canhgac_host_exposed_services{{{HOST}}})", "")],
                width=6,
            ),
            panel(
                "stat",
                "Bản cập nhật đang chờ",
                "Pending updates by class.",
                # One target per class: the legend is Vietnamese, the label value is not.
                [
                    (f'max(canhgac_host_updates_pending{{class="security",{HOST}}})', "bảo mật"),
                    (f'max(canhgac_host_updates_pending{{class="other",{HOST}}})', "khác"),
                ],
                width=6,
            ),
            panel(
                "stat",
                "Cần khởi động lại",
                "1 when the host needs a reboot.",
                [(f"max(canhgac_host_reboot_required{{{HOST}}})", "")],
                width=6,
            ),
        ],
        [AGENCY_VARIABLE, HOST_VARIABLE],
    )
    certificates = dashboard(
        "canhgac-certificates",
        "canhgac — Chứng thư số",
        "Certificates expiring in the next 90 days, soonest first: each host's earliest "
        "(always exported), and every certificate when the opt-in detail is on.",
        [
            panel(
                "table",
                "Chứng thư số hết hạn trong 90 ngày",
                "Days left until each host's earliest certificate expires (negative: expired).",
                [(f"sort(canhgac:host_cert_expiry_days:min{{{AGENCY}}} < 90)", "số ngày còn lại")],
                width=24,
                height=14,
                instant=True,
            ),
            # Every certificate, not only each host's earliest: the capped opt-in detail
            # (server.metrics_cert_max_series); without it this table is empty.
            panel(
                "table",
                "Từng chứng thư số hết hạn trong 90 ngày",
                "Every certificate of each host (files and endpoints, whole chains) "
                "expiring within 90 days, in days, soonest first, with its subject CN and "
                "location. Needs the opt-in detail server.metrics_cert_max_series > 0 "
                "(docs/metrics.md); empty without it.",
                [
                    (
                        "sort((max by (host, agency, subject_cn, location) "
                        f"(canhgac_cert_not_after_timestamp_seconds{{{AGENCY}}}) - time()) "
                        "/ 86400 < 90)",
                        "số ngày còn lại",
                    )
                ],
                width=24,
                height=14,
                instant=True,
            ),
        ],
        [AGENCY_VARIABLE],
    )
    exposure = dashboard(
        "canhgac-exposure",
        "canhgac — Dịch vụ mở ra mạng",
        "Services listening on non-loopback addresses, by agency and host, and the "
        "devices nobody enrolled on each agency's LAN (discovery).",
        [
            panel(
                "bargauge",
                "Dịch vụ mở ra mạng theo đơn vị",
                "Exposed services per agency.",
                [(f"sort_desc(canhgac:agency_exposed_services:sum{{{AGENCY}}})", "{{agency}}")],
                instant=True,
            ),
            panel(
                "table",
                "Máy chủ mở nhiều dịch vụ nhất",
                "Hosts with the most exposed services.",
                [
                    (
                        "topk(20, max by (host, agency) "
                        f"(canhgac_host_exposed_services{{{AGENCY}}}))",
                        "dịch vụ mở",
                    )
                ],
                instant=True,
            ),
            lan_unmanaged(),
        ],
        [AGENCY_VARIABLE],
    )
    collector = dashboard(
        "canhgac-collector",
        "canhgac — Tình trạng máy chủ thu thập",
        "The collector's own health: up, report outcomes, ingest latency, state age, scrape time.",
        [
            panel(
                "stat",
                "Máy chủ thu thập hoạt động",
                "1 per replica Prometheus can scrape.",
                [('up{job="canhgac"}', "{{instance}}")],
                width=8,
            ),
            panel(
                "timeseries",
                "Báo cáo nhận được theo kết quả",
                "Reports received per second, by outcome.",
                [("sum by (outcome) (rate(canhgac_reports_received_total[5m]))", "{{outcome}}")],
                width=16,
                unit="reqps",
            ),
            panel(
                "timeseries",
                "Thời gian xử lý báo cáo (phân vị 95)",
                "95th percentile ingest latency.",
                [
                    (
                        "histogram_quantile(0.95, sum by (le) "
                        "(rate(canhgac_ingest_duration_seconds_bucket[5m])))",
                        "phân vị 95",
                    )
                ],
                unit="s",
            ),
            panel(
                "timeseries",
                "Độ cũ của trạng thái trong bộ nhớ",
                "Seconds since each replica refreshed its host state.",
                [("canhgac_state_age_seconds", "{{instance}}")],
                unit="s",
            ),
            panel(
                "timeseries",
                "Thời gian đọc /metrics",
                "How long Prometheus takes to scrape the collector.",
                [('scrape_duration_seconds{job="canhgac"}', "{{instance}}")],
                unit="s",
            ),
            panel(
                "stat",
                "Số chuỗi số liệu",
                "Series returned by the last scrape.",
                [('scrape_samples_scraped{job="canhgac"}', "{{instance}}")],
            ),
            panel(
                "timeseries",
                "Chuỗi chi tiết bị lược bỏ do giới hạn",
                "Opt-in detail series left out by their configured cap, per second "
                "(above 0: raise metrics_rule_failing_max_series or metrics_cert_max_series).",
                [
                    (
                        "sum by (family) (rate(canhgac_metrics_series_dropped_total[5m]))",
                        "{{family}}",
                    )
                ],
            ),
        ],
        [],
    )
    return {
        "province.json": province,
        "agency.json": agency,
        "host.json": host,
        "certificates.json": certificates,
        "exposure.json": exposure,
        "collector.json": collector,
    }


def render(document: dict[str, Any]) -> str:
    return json.dumps(document, ensure_ascii=False, indent=2) + "\n"


def main() -> None:
    for name, document in dashboards().items():
        (HERE / name).write_text(render(document), encoding="utf-8")


if __name__ == "__main__":
    main()
