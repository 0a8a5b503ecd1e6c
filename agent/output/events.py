"""The agent's log: one line per event, readable text by default or JSON.

Text lines are `<UTC time> <level> <event>: <message>`, with the message made
terminal-safe (control characters escaped), so a hostile string from the host or the
collector can neither forge a second log line nor drive the terminal. JSON lines are
ASCII-only objects (`time`, `level`, `event`, `message` and the event's fields), for a
log shipper.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TextIO

from rules.terminal import printable


class LogFormat(enum.Enum):
    TEXT = "text"
    JSON = "json"


class Level(enum.Enum):
    INFO = "info"
    WARNING = "warning"
    ERROR = "error"


class EventLog:
    """Writes events to `stream` (standard error under systemd goes to the journal)."""

    def __init__(
        self,
        stream: TextIO,
        log_format: LogFormat = LogFormat.TEXT,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._stream = stream
        self._format = log_format
        self._clock = clock

    def event(self, level: Level, event: str, message: str, **fields: object) -> None:
        stamp = self._clock().astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        if self._format is LogFormat.JSON:
            record: dict[str, object] = {
                "time": stamp,
                "level": level.value,
                "event": event,
                "message": message,
            }
            record.update({k: v for k, v in fields.items() if k not in record})
            line = json.dumps(record, default=str)
        else:
            line = f"{stamp} {level.value} {printable(event)}: {printable(message)}"
        self._stream.write(line + "\n")
        self._stream.flush()
