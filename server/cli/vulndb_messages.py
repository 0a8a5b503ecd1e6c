"""What `canhgac-server vulndb` tells its user, in Vietnamese or English.

An error is rendered from its kind and parameters (server/vulns/errors.py): the
English text is the error's own message, with the parser's or the system's reason;
the Vietnamese one names what failed and what to do, without that reason (system and
parser texts are English), and says that `--lang en` shows it.
"""

from __future__ import annotations

from server.vulns.errors import VulnDbError, VulnErrorKind

K = VulnErrorKind
DETAIL_VI = " (chi tiết: chạy lại với --lang en)"
ERROR_PREFIX = {"vi": "Lỗi: ", "en": "Error: "}

VI: dict[VulnErrorKind, str] = {
    K.INVALID_FEED: "tệp {path} không phải dữ liệu lỗ hổng hợp lệ; không nhập gì, kho cũ giữ "
    "nguyên",
    K.PATH_MISSING: "không có tệp hoặc thư mục {path}",
    K.NOTHING_TO_IMPORT: "không có dữ liệu nào để nhập",
    K.DUPLICATE_FEED: "một lần nhập có hai tệp cùng nguồn dữ liệu: {names}",
    K.MANIFEST_UNREADABLE: "không đọc được bảng kê của gói dữ liệu {path}",
    K.MANIFEST_INVALID: "bảng kê {path} không đúng định dạng",
    K.MANIFEST_MISMATCH: "tệp {path} không khớp bảng kê (kích thước hoặc mã băm SHA-256): đã bị "
    "sửa hoặc cắt cụt khi chuyển; không nhập gì",
    K.LISTED_UNREADABLE: "tệp {path} có trong bảng kê nhưng không đọc được",
    K.STORE_MISSING: "chưa có kho dữ liệu lỗ hổng tại {path} (canhgac-server vulndb import)",
    K.STORE_BUILD: "không tạo được kho dữ liệu lỗ hổng {path}; kho cũ giữ nguyên",
    K.STORE_INTEGRITY: "kho dữ liệu lỗ hổng mới {path} không qua kiểm tra toàn vẹn; kho cũ giữ "
    "nguyên",
    K.STORE_UNREADABLE: "không đọc được kho dữ liệu lỗ hổng {path}",
    K.STORE_VERSION: "{path} không phải kho dữ liệu lỗ hổng của phiên bản này",
    K.URL_REFUSED: "{url}: chỉ tải qua https (hoặc http tới chính máy này)",
    K.DOWNLOAD_FAILED: "{url}: tải về không thành công",
    K.DOWNLOAD_TOO_LARGE: "{url}: lớn hơn {limit} byte",
    K.NOT_GZIP: "{url}: không phải tệp nén gzip hợp lệ",
    K.GZIP_TOO_LARGE: "{url}: lớn hơn {limit} byte sau khi giải nén",
    K.BAD_FILE_NAME: "{name} không phải tên tệp đơn giản",
    K.BAD_SOURCE: "--source {source} không có dạng TÊN=ĐỊA_CHỈ",
    K.WRITE_FAILED: "không ghi được vào {path}",
}
# Kinds whose English message has a reason the Vietnamese text leaves out.
WITH_DETAIL = frozenset(
    {
        K.INVALID_FEED,
        K.MANIFEST_UNREADABLE,
        K.LISTED_UNREADABLE,
        K.STORE_BUILD,
        K.STORE_UNREADABLE,
        K.DOWNLOAD_FAILED,
        K.NOT_GZIP,
        K.WRITE_FAILED,
    }
)


def error_text(error: VulnDbError, lang: str) -> str:
    """The error as its user reads it, with the language's "Error: " prefix."""
    if lang == "en":
        return ERROR_PREFIX["en"] + str(error)
    params = {"path": "?", "url": "?", "names": "?", "limit": "?", "name": "?", "source": "?"}
    params.update(error.params)
    if error.kind is K.INVALID_FEED and "path" not in error.params:
        text = "dữ liệu lỗ hổng không hợp lệ; không nhập gì, kho cũ giữ nguyên"
    else:
        text = VI[error.kind].format(**params)
    return ERROR_PREFIX["vi"] + text + (DETAIL_VI if error.kind in WITH_DETAIL else "")


def imported_text(names: str, target: str, generation: str, lang: str) -> str:
    if lang == "en":
        return f"Imported {names} into {target}; generation {generation}"
    return f"Đã nhập {names} vào {target}; thế hệ {generation}"
