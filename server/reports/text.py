"""The audit documents' fixed text (one catalogue, vi and en) and value formatting.

Vietnamese is the default: dates dd/mm/yyyy, a decimal comma, and no English word
in the Vietnamese column (a test checks every entry). Untrusted strings from hosts
(hostnames, evidence, paths) pass through `inert` before any format sees them:
control characters and bidirectional overrides become visible escapes, so they can
neither reorder a line in a viewer nor hide text.
"""

from __future__ import annotations

import json
import unicodedata
from datetime import date, datetime
from enum import StrEnum
from typing import Any

from rules.language.templates import time_text
from server.read.audit_views import Text


class Lang(StrEnum):
    VI = "vi"
    EN = "en"


# key -> (vi, en). Status and severity values are keys too ("status.fail", "sev.high").
CATALOGUE: dict[str, tuple[str, str]] = {
    "title.agency": ("Hồ sơ đánh giá an toàn thông tin", "Information security audit package"),
    "title.province": (
        "Hồ sơ đánh giá an toàn thông tin toàn tỉnh",
        "Province information security audit package",
    ),
    "as_of": ("Số liệu tính đến", "Data as of"),
    "previous": ("Kỳ trước", "Previous period"),
    "summary": ("Tóm tắt", "Summary"),
    "agency": ("Cơ quan", "Agency"),
    "score": ("Điểm", "Score"),
    "rank": ("Xếp hạng", "Rank"),
    "change": ("Thay đổi so với kỳ trước", "Change since the previous period"),
    "hosts": ("Máy chủ được giám sát", "Hosts covered"),
    "hosts_affected": ("Số máy chủ bị ảnh hưởng", "Hosts affected"),
    "stale_hosts": ("Máy chủ không gửi báo cáo gần đây", "Stale hosts"),
    "open_by_severity": ("Phát hiện chưa khắc phục theo mức độ", "Open findings by severity"),
    "waived_findings": ("Phát hiện được miễn trừ", "Waived findings"),
    "urgent": ("Việc cần làm ngay", "Most urgent actions"),
    "ranking": ("Bảng xếp hạng các cơ quan", "Ranking of agencies"),
    "compliance": ("Mức độ đáp ứng theo bộ tiêu chuẩn", "Compliance by framework"),
    "requirement": ("Yêu cầu", "Requirement"),
    "status": ("Trạng thái", "Status"),
    "confidence": ("Độ tin cậy của ánh xạ", "Mapping confidence"),
    "rules": ("Luật kiểm tra", "Rules"),
    "failing_hosts": ("Máy chủ không đạt", "Failing hosts"),
    "met": ("Đạt", "Met"),
    "not_met": ("Không đạt", "Not met"),
    "not_assessed": ("Chưa đánh giá", "Not assessed"),
    "other": ("Khác", "Other"),
    "security_level": ("Cấp độ an toàn hệ thống", "Security level"),
    "security_updates_count": ("Số bản vá bảo mật chờ cài", "Security updates pending"),
    "oldest_update": ("Bản vá bảo mật chờ từ ngày", "Oldest security update pending since"),
    "hosts_cut": (
        "Bản in liệt kê {shown} trên {total} máy chủ, là các máy chủ có điểm thấp nhất (chưa "
        "xác định điểm trước); tình trạng mọi máy chủ có trong tệp XLSX, HTML và JSON.",
        "The printed document lists {shown} of the {total} hosts, those with the lowest "
        "scores (unknown first); every host's state is in the XLSX, HTML and JSON files.",
    ),
    "detail_cut": (
        "Bản in liệt kê {shown} trên {total} phát hiện ở mức độ này (bảng trên tổng hợp mọi "
        "luật); danh sách đầy đủ, mỗi phát hiện một dòng, có trong tệp CSV, XLSX và HTML.",
        "The printed document lists {shown} of the {total} findings of this severity (the "
        "table above sums up every rule); the full list, one finding per row, is in the "
        "CSV, XLSX and HTML files.",
    ),
    "not_applicable": ("Không áp dụng", "Not applicable"),
    "security_levels": (
        "Cấp độ an toàn hệ thống thông tin của máy chủ",
        "Security levels of the hosts",
    ),
    "levels": ("Cấp độ {levels}", "Levels {levels}"),
    "levels_note": (
        "Mỗi yêu cầu chỉ áp dụng cho máy chủ thuộc các cấp độ có yêu cầu đó; yêu cầu cao "
        "hơn cấp độ của hệ thống là không áp dụng; máy chủ chưa khai báo cấp độ được đánh "
        "giá theo mọi yêu cầu.",
        "Each requirement applies only to hosts of the security levels that contain it; a "
        "requirement above the system's level is not applicable; a host whose level is not "
        "declared is judged by every requirement.",
    ),
    "findings": ("Phát hiện theo mức độ", "Findings by severity"),
    "rule": ("Luật", "Rule"),
    "host": ("Máy chủ", "Host"),
    "item": ("Đối tượng", "Item"),
    "evidence": ("Bằng chứng", "Evidence"),
    "message": ("Mô tả", "Description"),
    "remediation": ("Cách khắc phục", "Remediation"),
    "fix": ("Lệnh khắc phục", "Fix command"),
    "first_seen": ("Phát hiện lần đầu", "First seen"),
    "age_days": ("Số ngày tồn tại", "Age (days)"),
    "waiver": ("Miễn trừ", "Waiver"),
    "severity": ("Mức độ", "Severity"),
    "count": ("Số lượng", "Count"),
    "none": ("Không có", "None"),
    "unknown": ("Chưa xác định", "Unknown"),
    "yes": ("Có", "Yes"),
    "no": ("Không", "No"),
    "remediation_time": ("Thời gian khắc phục", "Time to remediate"),
    "resolved": ("Đã khắc phục trong kỳ", "Resolved in the period"),
    "median_days": ("Số ngày khắc phục (trung vị)", "Median days to remediate"),
    "still_open": ("Còn mở tại thời điểm tính", "Still open at the cut-off"),
    "oldest_open": ("Phát hiện mở lâu nhất (ngày)", "Oldest open finding (days)"),
    "waivers": ("Miễn trừ còn hiệu lực và đã hết hạn", "Waivers in force and expired"),
    "justification": ("Lý do", "Justification"),
    "approved_by": ("Người phê duyệt", "Approved by"),
    "expires": ("Ngày hết hạn", "Expires"),
    "in_force": ("Còn hiệu lực", "In force"),
    "hosts_section": ("Tình trạng từng máy chủ", "State of each host"),
    "last_report": ("Báo cáo gần nhất", "Last report"),
    "stale": ("Không gửi báo cáo gần đây", "Stale"),
    "security_updates": ("Bản vá bảo mật chờ cài (từ ngày)", "Security updates pending (since)"),
    "reboot": ("Cần khởi động lại", "Reboot required"),
    "certificates": ("Chứng thư số hết hạn trong 90 ngày", "Certificates expiring within 90 days"),
    "exposed": ("Dịch vụ mở ra mạng", "Services exposed to the network"),
    "unread": ("Dữ liệu không đọc được", "Facts that could not be read"),
    "days_left": ("còn {n} ngày", "{n} days left"),
    "domain.updates": ("bản vá", "updates"),
    "domain.certificates": ("chứng thư số", "certificates"),
    "domain.listening": ("cổng đang mở", "listening sockets"),
    "unread.failed": ("lỗi khi đọc", "failed"),
    "unread.timeout": ("quá thời gian", "timed out"),
    "unread.permission": ("không đủ quyền", "permission denied"),
    "unread.unsupported": ("không hỗ trợ trên máy này", "unsupported on this host"),
    "unread.skipped": ("bị bỏ qua", "skipped"),
    "unread.absent": ("không có trong báo cáo", "not in the report"),
    "lan": (
        "Thiết bị chưa được quản lý trong mạng nội bộ",
        "Unmanaged devices on the local network",
    ),
    "lan_not_assessed": (
        "Không máy chủ nào dò tìm thiết bị trong mạng nội bộ: chưa đánh giá.",
        "No host sweeps the local network (no discovery): not assessed.",
    ),
    "lan_sweeping": ("Máy chủ dò tìm thiết bị", "Hosts sweeping the network"),
    "lan_devices": ("Thiết bị phát hiện được", "Devices found"),
    "lan_managed": ("Thiết bị được quản lý", "Managed devices"),
    "lan_unmanaged": ("Thiết bị chưa được quản lý", "Unmanaged devices"),
    "lan_risky": (
        "Thiết bị chưa được quản lý mở cổng rủi ro",
        "Unmanaged devices with a risky open port",
    ),
    "lan_status": ("Tình trạng dò tìm", "Discovery"),
    "lan_swept": ("Đã dò tìm", "Swept"),
    "lan_failed": ("Máy chủ dò tìm không thành công", "Hosts whose sweep failed"),
    "lan_note": (
        "Thiết bị được quản lý khi địa chỉ MAC hoặc IP của nó là của một máy chủ được giám sát "
        "của cơ quan; cổng rủi ro là cổng mà một luật của bộ luật mạng nội bộ kiểm tra.",
        "A device is managed when its MAC or IP address is one of the agency's monitored "
        "hosts; a risky port is one a rule of the local network pack checks.",
    ),
    "ip_addresses": ("Địa chỉ IP", "IP addresses"),
    "mac": ("Địa chỉ MAC", "MAC address"),
    "vendor": ("Nhà sản xuất", "Vendor"),
    "open_ports": ("Cổng mở (dịch vụ dự đoán)", "Open ports (service guess)"),
    "risky": ("rủi ro", "risky"),
    "last_seen": ("Thấy lần cuối", "Last seen"),
    "seen_by": ("Được dò thấy bởi", "Seen by"),
    "lan_cut": (
        "Bản in liệt kê {shown} trên {total} thiết bị chưa được quản lý (thiết bị mở cổng rủi "
        "ro trước); danh sách đầy đủ có trong tệp XLSX, HTML và JSON.",
        "The printed document lists {shown} of the {total} unmanaged devices (those with a "
        "risky open port first); the full list is in the XLSX, HTML and JSON files.",
    ),
    "vuln": ("Lỗ hổng đã biết của các gói phần mềm", "Known vulnerabilities of packages"),
    "vuln_note": (
        "Gói phần mềm lấy từ cùng các báo cáo với phần còn lại của hồ sơ; đối chiếu với cơ sở "
        "dữ liệu lỗ hổng HIỆN TẠI (không phải của ngày tính số liệu), tuổi dữ liệu và tuổi bản "
        "sửa tính đến ngày tính số liệu. Mỗi mục là một cặp (máy chủ, mã lỗ hổng, gói nguồn).",
        "Packages from the same reports as the rest of the package; matched against the "
        "CURRENT vulnerability database (not the one of the cut-off day), with the feeds' "
        "and fixes' ages at the cut-off day. Each item is one (host, CVE, source package).",
    ),
    "vuln.no_store": (
        "Chưa nhập cơ sở dữ liệu lỗ hổng (hoặc không đọc được): chưa đánh giá.",
        "No vulnerability database imported (or it is unreadable): not assessed.",
    ),
    "vuln.stale": (
        "Dữ liệu lỗ hổng đã cũ (quá {days} ngày): chưa đánh giá, cần nhập dữ liệu mới.",
        "The vulnerability data is stale (older than {days} days): not assessed, import "
        "newer feeds.",
    ),
    "vuln.not_matched": (
        "Không máy chủ nào đối chiếu được với dữ liệu lỗ hổng: chưa đánh giá.",
        "No host could be matched against the vulnerability data: not assessed.",
    ),
    "vuln_feeds": ("Nguồn dữ liệu lỗ hổng", "Vulnerability feeds"),
    "vuln_feed": ("Nguồn", "Feed"),
    "vuln_generated": ("Ngày dữ liệu", "Data date"),
    "vuln_age": ("Tuổi (ngày)", "Age (days)"),
    "vuln_stale_flag": ("Đã cũ", "Stale"),
    "vuln_matched": ("Máy chủ đã đối chiếu", "Hosts matched"),
    "vuln_unmatched": ("Máy chủ không đối chiếu được", "Hosts not matched"),
    "vuln_problem.stale": ("dữ liệu đã cũ", "stale data"),
    "vuln_problem.unsupported": (
        "không có nguồn dữ liệu cho phiên bản hệ điều hành",
        "no feed covers its release",
    ),
    "vuln_problem.no_facts": (
        "báo cáo thiếu thông tin máy chủ hoặc gói phần mềm",
        "its report lacks the host or packages facts",
    ),
    "vuln_items": ("Số mục lỗ hổng", "Vulnerability items"),
    "vuln_kev": (
        "Mục lỗ hổng bị khai thác thực tế (KEV của CISA)",
        "Known exploited items (CISA KEV)",
    ),
    "vuln_severity": ("Mức độ theo nhà phát hành", "Vendor severity"),
    "vuln_total": ("Tổng", "Total"),
    "vuln_top": (
        "Máy chủ có nhiều lỗ hổng đã có bản sửa nhất",
        "Hosts with the most fix-available vulnerabilities",
    ),
    "vuln_critical_high": ("Trong đó nghiêm trọng hoặc cao", "Of which critical or high"),
    "vuln_kev_of": ("Trong đó bị khai thác thực tế", "Of which known exploited"),
    "vuln_urgent": (
        "Lỗ hổng bị khai thác thực tế, và lỗ hổng nghiêm trọng hoặc cao đã có bản sửa",
        "Known exploited vulnerabilities, and critical or high ones with a fix available",
    ),
    "vuln_cve": ("Mã lỗ hổng", "CVE"),
    "vuln_package": ("Gói nguồn", "Source package"),
    "vuln_versions": ("Phiên bản đã cài → phiên bản sửa", "Installed → fixed version"),
    "vuln_fix_since": ("Có bản sửa từ ngày", "Fix available since"),
    "vuln_exploited": ("Bị khai thác thực tế", "Known exploited"),
    "vuln_cut": (
        "Bản in liệt kê {shown} trên {total} lỗ hổng (bị khai thác thực tế trước); danh sách "
        "đầy đủ có trong tệp XLSX, HTML và JSON.",
        "The printed document lists {shown} of the {total} vulnerabilities (known exploited "
        "first); the full list is in the XLSX, HTML and JSON files.",
    ),
    "vstate.fix_available": ("Đã có bản sửa", "Fix available"),
    "vstate.fix_pending": ("Bản sửa chưa có trong kho", "Fix pending"),
    "vstate.affected_no_fix": ("Chưa có bản sửa", "No fix yet"),
    "vstate.will_not_fix": ("Nhà phát hành không sửa", "Will not fix"),
    "vstate.end_of_life": ("Hết hỗ trợ", "End of life"),
    "vsev.critical": ("Nghiêm trọng", "Critical"),
    "vsev.high": ("Cao", "High"),
    "vsev.medium": ("Trung bình", "Medium"),
    "vsev.low": ("Thấp", "Low"),
    "vsev.negligible": ("Không đáng kể", "Negligible"),
    "vsev.unknown": ("Chưa phân loại", "Not yet rated"),
    "trend": ("Diễn biến điểm", "Score trend"),
    "coverage": ("Mức độ đáp ứng các yêu cầu", "Requirement coverage"),
    "excluded": ("Máy chủ không được tính và lý do", "Hosts excluded and why"),
    "excluded.not_evaluated": (
        "không có báo cáo đã đánh giá trước thời điểm tính",
        "no evaluated report before the cut-off",
    ),
    "methodology": ("Phương pháp", "Methodology"),
    "formula": (
        "Điểm = tổng trọng số luật đạt / tổng trọng số luật đạt, không đạt và lỗi; "
        "luật không áp dụng và được miễn trừ không tính; luật lỗi không bao giờ tính là đạt.",
        "Score = weight of passing rules / weight of passing, failing and erroring rules; "
        "not applicable and waived rules are excluded; an error never counts as a pass.",
    ),
    "weights": ("Trọng số theo mức độ", "Weights by severity"),
    "packs": ("Bộ luật và phiên bản", "Rule packs and versions"),
    "fingerprint": ("Dấu vân tay của chính sách", "Policy fingerprint"),
    "stale_after": ("Coi là không gửi báo cáo sau (giờ)", "Stale after (hours)"),
    "hosts_note": (
        "Chỉ tính máy chủ có báo cáo được đánh giá trước thời điểm tính.",
        "Only hosts with an evaluated report before the cut-off are counted.",
    ),
    "status.pass": ("Đạt", "Met"),
    "status.fail": ("Không đạt", "Not met"),
    "status.error": ("Không đọc được dữ liệu", "Could not be read"),
    "status.waived": ("Được miễn trừ", "Waived"),
    "status.not_applicable": ("Không áp dụng", "Not applicable"),
    "status.not_assessed": ("Chưa đánh giá", "Not assessed"),
    "status.open": ("Chưa khắc phục", "Open"),
    "conf.verified": ("Đã kiểm chứng", "Verified"),
    "conf.unverified": ("Chưa kiểm chứng", "Unverified"),
    "sev.critical": ("Nghiêm trọng", "Critical"),
    "sev.high": ("Cao", "High"),
    "sev.medium": ("Trung bình", "Medium"),
    "sev.low": ("Thấp", "Low"),
    "sev.info": ("Thông tin", "Info"),
}


def t(key: str, lang: Lang) -> str:
    vi, en = CATALOGUE[key]
    return en if lang is Lang.EN else vi


def pick(text: Text, lang: Lang) -> str:
    """A localized text from the data; the other language when this one is empty."""
    chosen = text.en if lang is Lang.EN else text.vi
    return inert(chosen or text.vi or text.en)


def inert(value: str) -> str:
    """Control and bidirectional-formatting characters as visible `\\u....` escapes."""
    out = []
    for char in value:
        category = unicodedata.category(char)
        if category in ("Cc", "Cf", "Zl", "Zp") and char not in ("\n",):
            out.append(f"\\u{ord(char):04x}")
        else:
            out.append(char)
    return "".join(out)


def evidence_text(evidence: dict[str, Any]) -> str:
    return inert(json.dumps(evidence, ensure_ascii=False, sort_keys=True, default=str))


def date_text(value: date, lang: Lang) -> str:
    return value.strftime("%Y-%m-%d") if lang is Lang.EN else value.strftime("%d/%m/%Y")


def datetime_text(value: datetime, lang: Lang) -> str:
    return time_text(value, lang.value)  # the rule messages' wording too


def number_text(value: float, lang: Lang, digits: int = 1) -> str:
    text = f"{value:,.{digits}f}"
    if lang is Lang.VI:
        # Vietnamese: "." groups thousands, "," marks decimals.
        text = text.replace(",", "\0").replace(".", ",").replace("\0", ".")
    return text


def percent_text(ratio: float | None, lang: Lang) -> str:
    if ratio is None:
        return t("unknown", lang)
    return f"{number_text(ratio * 100, lang)} %"


def change_text(change: float | None, lang: Lang) -> str:
    if change is None:
        return t("unknown", lang)
    sign = "+" if change >= 0 else "-"
    return f"{sign}{number_text(abs(change) * 100, lang)} %"
