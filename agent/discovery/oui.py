"""MAC vendor names from an OUI table on this machine: Wireshark's `manuf` file when
present, else the table scapy carries; an unknown or locally administered address
(random MACs of VMs, containers, phones' privacy addresses) has no vendor: ""."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

WIRESHARK_MANUF = (Path("/usr/share/wireshark/manuf"), Path("/etc/wireshark/manuf"))
MAX_VENDOR = 128

Lookup = Callable[[str], str]


def parse_manuf(text: str) -> dict[tuple[str, int], str]:
    """Wireshark's manuf lines (`00:00:0C<TAB>Cisco<TAB>Cisco Systems, Inc`, or a
    masked prefix `00:1B:C5:00:00:00/36`) -> {(hex prefix, bits): long name}."""
    table: dict[tuple[str, int], str] = {}
    for line in text.splitlines():
        fields = line.split("\t")
        if len(fields) < 2 or line.startswith("#"):
            continue
        prefix, _, mask = fields[0].strip().partition("/")
        digits = prefix.replace(":", "").replace("-", "").replace(".", "").lower()
        bits = int(mask) if mask.isdigit() else len(digits) * 4
        name = (fields[2] if len(fields) > 2 and fields[2].strip() else fields[1]).strip()
        if digits and bits % 4 == 0 and name:
            table[(digits[: bits // 4], bits)] = name[:MAX_VENDOR]
    return table


def table_lookup(table: dict[tuple[str, int], str]) -> Lookup:
    lengths = sorted({bits for _, bits in table}, reverse=True)

    def lookup(mac: str) -> str:
        digits = mac.replace(":", "").lower()
        for bits in lengths:  # the longest (most specific) prefix wins
            name = table.get((digits[: bits // 4], bits))
            if name:
                return name
        return ""

    return lookup


def scapy_lookup() -> Lookup:
    """scapy's bundled table; only called where scapy is already loaded to scan."""
    from scapy.config import conf  # noqa: PLC0415 - scapy is the optional `scan` extra

    database = conf.manufdb

    def lookup(mac: str) -> str:
        if database is None:
            return ""
        name = str(database.lookup(mac)[1])
        return "" if name.lower() == mac.lower() else name[:MAX_VENDOR]

    return lookup


def vendor_lookup(paths: tuple[Path, ...] = WIRESHARK_MANUF, *, scapy_loaded: bool) -> Lookup:
    for path in paths:
        try:
            return table_lookup(parse_manuf(path.read_text("utf-8", errors="replace")))
        except OSError:
            continue
    return scapy_lookup() if scapy_loaded else (lambda mac: "")


def vendor_of(mac: str | None, lookup: Lookup) -> str:
    if not mac:
        return ""
    first = int(mac.split(":")[0], 16)
    if first & 0x02:  # locally administered: no manufacturer assigned it
        return ""
    return lookup(mac)
