"""How `ainfera serve` holds client connections: uvicorn (uvloop, httptools) plus the limits
uvicorn does not have.

uvicorn times out idle keep-alive connections, but not a client that never finishes its
request headers: 300 connections sending a header byte now and then were held for as long as
the clients liked. And its `limit_concurrency` only answers 503 once a request's headers are
complete, so such connections are never refused at all. This protocol adds, per connection:

- a header-read timeout: a request whose header block is not complete within
  `header_timeout_s` of its first byte (or of the connection opening) is dropped;
- a header size bound: more than `max_header_bytes` of headers is answered 431 and dropped;
- a cap on concurrent connections: a connection accepted above `max_connections` is closed at
  once, before it costs anything (clients, and the SDKs, retry a refused connection).

It subclasses uvicorn's httptools protocol and relies on its parser callbacks
(`on_message_begin`, `on_headers_complete`) and its `connections` set, as of the uvicorn
version pinned in pyproject.toml.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, ClassVar

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

log = logging.getLogger("ainfera.server")

_431 = (b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-type: text/plain\r\n"
        b"content-length: 33\r\nconnection: close\r\n\r\nrequest header fields too large\r\n")


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    header_timeout_s: ClassVar[float] = 10.0
    max_header_bytes: ClassVar[int] = 64 * 1024
    max_connections: ClassVar[int] = 1024
    _refusal_logged_at: ClassVar[float] = 0.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._header_timer: asyncio.TimerHandle | None = None
        self._awaiting_headers = True
        self._header_bytes = 0

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) > self.max_connections:
            now = time.monotonic()
            if now - GuardedHttpToolsProtocol._refusal_logged_at > 1.0:
                GuardedHttpToolsProtocol._refusal_logged_at = now
                log.warning("refusing connections above AINFERA_MAX_CONNECTIONS=%d",
                            self.max_connections)
            transport.close()
            return
        self._arm_header_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_header_timer()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self._awaiting_headers and not self.transport.is_closing():
            self._header_bytes += len(data)
            if self._header_bytes > self.max_header_bytes:
                self.transport.write(_431)
                self.transport.close()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._awaiting_headers = True
        self._header_bytes = 0
        if self._header_timer is None:
            self._arm_header_timer()

    def on_headers_complete(self) -> None:
        self._awaiting_headers = False
        self._cancel_header_timer()
        super().on_headers_complete()

    def _arm_header_timer(self) -> None:
        self._cancel_header_timer()
        self._header_timer = self.loop.call_later(self.header_timeout_s, self._headers_too_slow)

    def _cancel_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _headers_too_slow(self) -> None:
        self._header_timer = None
        # Between requests a keep-alive connection is uvicorn's keep-alive timer's business.
        if self._awaiting_headers and (self.cycle is None or self.cycle.response_complete) \
                and not self.transport.is_closing():
            self.transport.close()


def guarded_protocol(header_timeout_s: float, max_connections: int,
                     max_header_bytes: int = 64 * 1024) -> type[GuardedHttpToolsProtocol]:
    """The protocol class with this server's limits (uvicorn instantiates it per connection)."""
    return type("GuardedHttpToolsProtocol", (GuardedHttpToolsProtocol,), {
        "header_timeout_s": header_timeout_s, "max_connections": max_connections,
        "max_header_bytes": max_header_bytes})
