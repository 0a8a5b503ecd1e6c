"""PDF from the HTML document with Debian's headless Chromium (`--print-to-pdf`).

Chromium is an external program, run without a shell, with its own throw-away
profile directory, its own network traffic off (every host name resolves to
nothing) and the page loaded from a local file (whose Content-Security-Policy
forbids every request). Chromium is not a Python
dependency: without it, asking for PDF is a `ReportError` that says what to install.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

from server.reports.errors import ReportError

CHROMIUM_NAMES = ("chromium", "chromium-browser")
TIMEOUT_SECONDS = 120


def chromium_path() -> str | None:
    for name in CHROMIUM_NAMES:
        found = shutil.which(name)
        if found is not None:
            return found
    return None


def chromium_command(binary: str, profile: Path, *extra: str) -> list[str]:
    return [
        binary,
        "--headless",
        "--no-sandbox",  # runs as root in CI containers, where the sandbox cannot start
        "--disable-gpu",
        "--disable-background-networking",
        "--no-first-run",
        # Chromium itself still calls home (component updates, accounts, spelling
        # dictionaries) despite the flag above: these switch the rest off, and every
        # host name resolves to nothing, so no connection can leave the machine.
        "--disable-component-update",
        "--disable-sync",
        "--disable-default-apps",
        "--disable-extensions",
        "--disable-domain-reliability",
        "--no-pings",
        "--host-resolver-rules=MAP * ~NOTFOUND",
        f"--user-data-dir={profile}",
        *extra,
    ]


def html_to_pdf(page: bytes) -> bytes:
    binary = chromium_path()
    if binary is None:
        raise ReportError(
            "PDF needs Chromium, which is not installed (Debian: apt-get install chromium); "
            "the HTML format prints to PDF from any browser"
        )
    with tempfile.TemporaryDirectory(prefix="canhgac-pdf-") as work:
        source = Path(work) / "audit.html"
        target = Path(work) / "audit.pdf"
        source.write_bytes(page)
        command = chromium_command(
            binary,
            Path(work) / "profile",
            "--no-pdf-header-footer",
            f"--print-to-pdf={target}",
            source.as_uri(),
        )
        try:
            done = subprocess.run(  # noqa: S603 - fixed arguments, no shell
                command, capture_output=True, timeout=TIMEOUT_SECONDS, check=False
            )
        except (OSError, subprocess.TimeoutExpired) as e:
            raise ReportError(f"Chromium could not print the PDF: {e}") from e
        if done.returncode != 0 or not target.is_file():
            tail = done.stderr.decode("utf-8", "replace").strip().splitlines()[-1:]
            raise ReportError(
                f"Chromium could not print the PDF (exit {done.returncode}): {' '.join(tail)}"
            )
        return target.read_bytes()
