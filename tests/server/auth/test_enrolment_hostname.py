"""Hostnames in enrolment requests cannot carry terminal or bidi tricks (issue 14).

The hostname becomes the name of the agent's token, which `canhgac-server token list`
prints and the log records; before this check it was stored as sent.
"""

from __future__ import annotations

import pytest

from server.auth.enrolment import parse_enrol_request
from server.errors import UnprocessableError

HOSTILE = [
    "web01\x1b[2J\x1b[31mFAKE",  # ANSI: clear the screen, red text
    "web01\nagent-2  so-x  active",  # a newline faking a table row
    "web01\r",
    "web\u202eevil",  # right-to-left override
    "web\u2066x\u2069",  # bidi isolates
    "web\u200b01",  # zero-width space
    "web\u2028x",  # line separator
    "web\x00",
    "web\x7f",
    "web\x9b31m",  # C1 control (8-bit CSI)
]


@pytest.mark.parametrize("hostname", HOSTILE)
def test_hostile_hostnames_are_refused_naming_the_field(hostname: str) -> None:
    with pytest.raises(UnprocessableError) as caught:
        parse_enrol_request({"agent_id": "agent-1", "hostname": hostname})
    assert caught.value.field == "hostname"


@pytest.mark.parametrize(
    "hostname", ["web01", "db-02.so-tttt.gov.vn", "máy-chủ-sở-tư-pháp", "<script>x</script>"]
)
def test_ordinary_and_unicode_hostnames_are_accepted(hostname: str) -> None:
    # Visible text, even markup, is not refused here: outputs escape it where they print.
    assert parse_enrol_request({"agent_id": "agent-1", "hostname": hostname}) == (
        "agent-1",
        hostname,
    )
