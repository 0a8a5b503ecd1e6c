"""Coverage-guided fuzz target (atheris/libFuzzer) for report decoding.

Any body, declared identity or gzip (raw bytes, so the gzip reader is fuzzed too), or
gzip-compressed by the target (so the JSON, pre-scan and schema checks are reached),
must give a FactsDocument or an IngestError; anything else is a crash libFuzzer
reports with the input that caused it. Run briefly by the test suite
(test_fuzz_decode.py); by hand for long:

    .venv/bin/python tests/server/ingest/fuzz_decode.py CORPUS_DIR -max_total_time=3600

where CORPUS_DIR may start with a real report (the test writes one).
"""

from __future__ import annotations

import contextlib
import gzip
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import atheris

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))

with atheris.instrument_imports():
    from server.errors import IngestError
    from server.ingest.payload import Limits, decode_document

NOW = datetime(2026, 11, 27, 8, 0, tzinfo=UTC)
LIMITS = Limits(
    max_body_bytes=64 * 1024,
    max_decompressed_bytes=256 * 1024,
    max_json_depth=32,
    future_skew=timedelta(minutes=5),
    max_json_values=20_000,
    max_json_containers=5_000,
    max_gzip_members=4,
)


def test_one_input(data: bytes) -> None:
    if not data:
        return
    mode, body = data[0] % 3, data[1:]
    encoding: str | None = None
    if mode == 1:
        encoding = "gzip"  # the raw bytes, as a hostile client would declare them
    elif mode == 2:
        encoding, body = "gzip", gzip.compress(body, compresslevel=1)
    # A precise 4xx (IngestError) is the expected answer to most inputs.
    with contextlib.suppress(IngestError):
        decode_document(body, encoding, LIMITS, NOW)


def main() -> None:
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
