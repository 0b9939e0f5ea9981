"""An incremental Server-Sent Events decoder: bytes in as they arrive, whole events out.

Bytes are split into lines before decoding, so a UTF-8 character or a CRLF split across two
network reads is never broken; a trailing CR is held back until the next read shows whether
LF follows. Follows the WHATWG event-stream rules the SDKs' own decoders follow.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_EOL = re.compile(rb"\r\n|\r|\n")


@dataclass(frozen=True, slots=True)
class ServerSentEvent:
    event: str | None
    data: str


class SSEDecoder:
    def __init__(self) -> None:
        self._buffer = b""
        self._event: str | None = None
        self._data: list[str] = []

    def feed(self, chunk: bytes) -> list[ServerSentEvent]:
        self._buffer += chunk
        events: list[ServerSentEvent] = []
        start = 0
        while match := _EOL.search(self._buffer, start):
            if match.group() == b"\r" and match.end() == len(self._buffer):
                break  # a CR at the end may be the first half of CRLF
            event = self._line(self._buffer[start : match.start()].decode("utf-8"))
            if event is not None:
                events.append(event)
            start = match.end()
        self._buffer = self._buffer[start:]
        return events

    def flush(self) -> list[ServerSentEvent]:
        """At end of body: an unterminated last line or event still counts, as in the SDKs."""
        events = self.feed(b"\n") if self._buffer else []
        last = self._line("")
        return [*events, last] if last is not None else events

    def _line(self, line: str) -> ServerSentEvent | None:
        if not line:
            if self._event is None and not self._data:
                return None
            event = ServerSentEvent(self._event, "\n".join(self._data))
            self._event, self._data = None, []
            return event
        if line.startswith(":"):
            return None
        field, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if field == "event":
            self._event = value or None
        elif field == "data":
            self._data.append(value)
        return None
