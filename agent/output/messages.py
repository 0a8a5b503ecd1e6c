"""What `canhgac-agent run` prints: delivery receipts and delivery failures, in the
administrator's language (vi or en). The framing is translated; the low-level cause
(a library's or the server's own words) is kept as it was worded.
"""

from __future__ import annotations

from agent.errors import ShippingError
from agent.output.terminal import printable

_SHIPPING_FRAMES = {
    "vi": {
        "tls": "gửi báo cáo thất bại: không xác minh được chứng chỉ TLS của {url}: {detail}",
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
        "tls": "đăng ký thất bại: không xác minh được chứng chỉ TLS của {url}: {detail}",
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
