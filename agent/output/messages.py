"""What `canhgac-agent run` prints: delivery receipts and delivery failures, in the
administrator's language (vi or en). The framing is translated; the low-level cause
(a library's or the server's own words) is kept as it was worded.
"""

from __future__ import annotations

from agent.errors import ShippingError
from rules.terminal import printable

_SHIPPING_FRAMES = {
    "vi": {
        "tls": "gửi báo cáo thất bại: không xác minh được chứng thư số TLS của {url}: {detail}",
        "unreachable": "gửi báo cáo thất bại: không kết nối được tới {url}: {detail}",
        "rejected": "gửi báo cáo thất bại: máy chủ từ chối báo cáo ({url}): {detail}",
        "unexpected": "gửi báo cáo thất bại: máy chủ trả lời không hợp lệ ({url}): {detail}",
    },
    "en": {
        "tls": "delivery failed: TLS verification of {url} failed: {detail}",
        "unreachable": "delivery failed: cannot reach {url}: {detail}",
        "rejected": "delivery failed: the server rejected the report ({url}): {detail}",
        "unexpected": "delivery failed: unexpected answer from {url}: {detail}",
    },
}


_ENROLMENT_FRAMES = {
    "vi": {
        "tls": "đăng ký thất bại: không xác minh được chứng thư số TLS của {url}: {detail}",
        "unreachable": "đăng ký thất bại: không kết nối được tới {url}: {detail}",
        "rejected": "đăng ký thất bại: máy chủ từ chối ({url}): {detail}",
        "unexpected": "đăng ký thất bại: máy chủ trả lời không hợp lệ ({url}): {detail}",
    },
    "en": {
        "tls": "enrolment failed: TLS verification of {url} failed: {detail}",
        "unreachable": "enrolment failed: cannot reach {url}: {detail}",
        "rejected": "enrolment failed: the server refused ({url}): {detail}",
        "unexpected": "enrolment failed: unexpected answer from {url}: {detail}",
    },
}


def _framed(table: dict[str, dict[str, str]], error: ShippingError, lang: str) -> str:
    """The framing in the chosen language; the low-level cause stays as it was worded."""
    frames = table["en" if lang == "en" else "vi"]
    frame = frames.get(error.reason, frames["unexpected"])
    return frame.format(url=error.url, detail=error.detail or str(error))


def enrolment_message(error: ShippingError, lang: str) -> str:
    return _framed(_ENROLMENT_FRAMES, error, lang)


def enrolled_line(agent_id: str, agency: str, token_path: str, lang: str) -> str:
    if lang == "en":
        return (
            f"enrolled: agent {agent_id} of agency {agency};"
            f" token saved to {token_path} (mode 0600)"
        )
    return (
        f"đã đăng ký: tác tử {agent_id} thuộc cơ quan {agency};"
        f" mã truy cập được lưu tại {token_path} (quyền 0600)"
    )


def shipping_message(error: ShippingError, lang: str) -> str:
    return _framed(_SHIPPING_FRAMES, error, lang)


def delivery_line(report_id: str, status: str, score: float | None, failing: int, lang: str) -> str:
    vi = lang != "en"
    if status == "duplicate":
        # A duplicate is not scored again: its score and counts mean nothing here.
        if vi:
            return f"báo cáo {report_id}: máy chủ đã nhận báo cáo này trước đó (trùng lặp)"
        return f"report {report_id}: already received by the collector earlier (duplicate)"
    if vi:
        state = {"accepted": "đã được tiếp nhận"}
        score_text = "chưa xác định" if score is None else f"{score * 100:.1f}%"
        return (
            f"báo cáo {report_id}: {state.get(status, printable(status))};"
            f" điểm {score_text}; {failing} quy tắc không đạt"
        )
    score_text = "unknown" if score is None else f"{score * 100:.1f}%"
    return (
        f"report {report_id}: {'accepted' if status == 'accepted' else printable(status)};"
        f" score {score_text}; {failing} failing rules"
    )


def kept_line(pending: int, retry_in: float | None, lang: str) -> str:
    """The report could not be delivered now: it waits in the spool."""
    if lang == "en":
        when = f"; next attempt in {retry_in:.0f} s" if retry_in else ""
        return f"the report is kept in the spool ({pending} waiting){when}"
    when = f"; thử lại sau {retry_in:.0f} giây" if retry_in else ""
    return f"báo cáo được giữ lại trong hàng đợi ({pending} báo cáo đang chờ){when}"


def quarantined_line(name: str, answer: str, lang: str) -> str:
    """A spooled report set aside for good: refused by the collector, or unreadable."""
    if lang == "en":
        return f"report {name} set aside in the quarantine folder: {answer}"
    return f"báo cáo {name} được chuyển vào thư mục cách ly: {answer}"


def dropped_line(count: int, lang: str) -> str:
    if lang == "en":
        return f"the spool was full: {count} oldest report(s) dropped (told to the collector)"
    return (
        f"hàng đợi đã đầy: đã bỏ {count} báo cáo cũ nhất (số lượng được báo cho máy chủ thu thập)"
    )


def carry_error_line(error: Exception, lang: str) -> str:
    """The updates cache and collector pauses kept between runs could not be used."""
    if lang == "en":
        return f"the cache kept between runs is ignored (rebuilt this run): {error}"
    return f"bỏ qua bộ nhớ đệm giữ giữa các lần chạy (tạo lại ở lần này): {error}"


def spool_error_line(error: Exception, lang: str) -> str:
    """The spool cannot be written: the report is sent without it, once."""
    if lang == "en":
        return f"the spool cannot be used, the report is sent without it: {error}"
    return f"không dùng được hàng đợi, báo cáo được gửi trực tiếp không qua hàng đợi: {error}"


_DAEMON = {
    "vi": {
        "started": "tác tử bắt đầu chạy nền: thu thập mỗi {interval} giây,"
        " lần đầu sau {first} giây",
        "stopping": "nhận tín hiệu dừng: kết thúc",
        "abandoned": "chu kỳ hiện tại chưa xong sau {grace} giây: bỏ dở,"
        " báo cáo đã ghi vẫn an toàn",
        "reloaded": "đã nạp lại cấu hình: thu thập mỗi {interval} giây",
        "reload_failed": "không nạp lại được cấu hình, giữ cấu hình cũ: {error}",
        "cycle_failed": "chu kỳ thu thập thất bại: {error}",
    },
    "en": {
        "started": "agent daemon started: collecting every {interval} s, first in {first} s",
        "stopping": "stop signal received: exiting",
        "abandoned": "the current cycle did not end within {grace} s: abandoned, spooled reports"
        " are safe",
        "reloaded": "configuration reloaded: collecting every {interval} s",
        "reload_failed": "cannot reload the configuration, keeping the previous one: {error}",
        "cycle_failed": "collection cycle failed: {error}",
    },
}


def daemon_line(event: str, lang: str, **values: object) -> str:
    """The daemon's own events; numbers with the language's decimal mark."""
    vi = lang != "en"
    shown = {
        key: _number(value, vi) if isinstance(value, float) else printable(str(value))
        for key, value in values.items()
    }
    return _DAEMON["vi" if vi else "en"][event].format(**shown)


def _number(value: float, vi: bool) -> str:
    text = f"{value:.1f}".removesuffix(".0")
    return text.replace(".", ",") if vi else text
