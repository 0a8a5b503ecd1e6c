"""What `canhgac-agent run` prints: delivery receipts and delivery failures, in the
administrator's language (vi or en). The framing is translated; the low-level cause
(a library's or the server's own words) is kept as it was worded.
"""

from __future__ import annotations

from agent.errors import ShippingError
from agent.terminal import printable

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


def shipping_message(error: ShippingError, lang: str) -> str:
    """The framing in the chosen language; the low-level cause stays as it was worded."""
    frames = _SHIPPING_FRAMES["en" if lang == "en" else "vi"]
    frame = frames.get(error.reason, frames["unexpected"])
    return frame.format(url=error.url, detail=error.detail or str(error))


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
