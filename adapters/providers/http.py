"""The one shared `httpx.AsyncClient` for upstream calls, over httpx-aiohttp's transport.

Same httpx API, about four times the throughput of httpx's default transport on this kind of
machine (DESIGN section 7). The app's lifespan owns the client: build it there, close it there.
The aiohttp session is created on first use inside the running loop, so nothing happens at
import or build time.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Protocol

import aiohttp
import httpx
from httpx_aiohttp import AiohttpTransport
from httpx_aiohttp.transport import map_aiohttp_exceptions


@dataclass(frozen=True, slots=True)
class HTTPSettings:
    """Upstream connection settings. `read_timeout` bounds the gap between two reads, not the
    whole call, so a long stream that keeps sending is never cut off. The aiohttp transport
    applies connect, read and pool (its connect-including-queueing) timeouts; write is unused.
    """

    connect_timeout: float = 5.0
    read_timeout: float = 300.0
    pool_timeout: float = 10.0
    max_connections: int = 512
    max_keepalive_connections: int = 128
    keepalive_expiry: float = 30.0


def build_http_client(settings: HTTPSettings | None = None) -> httpx.AsyncClient:
    settings = settings or HTTPSettings()
    limits = httpx.Limits(
        max_connections=settings.max_connections,
        max_keepalive_connections=settings.max_keepalive_connections,
        keepalive_expiry=settings.keepalive_expiry,
    )
    timeout = httpx.Timeout(
        connect=settings.connect_timeout,
        read=settings.read_timeout,
        write=settings.read_timeout,
        pool=max(settings.pool_timeout, settings.connect_timeout),
    )
    transport = AiohttpTransport(limits=limits)

    def session() -> aiohttp.ClientSession:
        # The transport's own session, but with no cookie jar (see _NoCookies).
        connector = aiohttp.TCPConnector(keepalive_timeout=settings.keepalive_expiry,
                                         ssl=transport.ssl_context,
                                         limit=settings.max_connections)
        return aiohttp.ClientSession(connector=connector, cookie_jar=aiohttp.DummyCookieJar())

    transport.client = session
    client = httpx.AsyncClient(transport=transport, timeout=timeout)
    client._cookies = _NoCookies()  # the constructor's Cookies(), replaced (no public hook)
    return client


class _NoCookies(httpx.Cookies):
    """A gateway is no browser: one client serves every tenant, so a cookie an upstream sets
    (vendors' CDNs do) must not ride along on anyone's next call. Not parsing Set-Cookie on
    every response is also a measurable share of an upstream call."""

    def extract_cookies(self, response: httpx.Response) -> None:
        return None


# The seam providers send through. ------------------------------------------------------------


class UpstreamResponse(Protocol):
    """What a provider reads of an upstream's answer; `httpx.Response` is one."""

    @property
    def status_code(self) -> int: ...

    @property
    def headers(self) -> Mapping[str, str]: ...

    @property
    def content(self) -> bytes: ...  # once read

    @property
    def text(self) -> str: ...  # once read

    async def aread(self) -> bytes: ...

    def aiter_bytes(self) -> AsyncIterator[bytes]: ...

    async def aclose(self) -> None: ...


class Upstream(Protocol):
    async def post(self, url: str, headers: Mapping[str, str], body: bytes, *,
                   stream: bool) -> UpstreamResponse:
        """POSTs `body` with exactly `headers` (plus Host and Content-Length), following no
        redirect. Without `stream`, the body is read whole and the connection released. Fails
        with httpx's exceptions, whichever the path (`errors.map_httpx_errors` reads them)."""


def upstream_for(client: httpx.AsyncClient) -> Upstream:
    """The client from `build_http_client` is driven through its aiohttp session directly:
    httpx's layers above the transport (send's auth/redirect/cookie/hook loops, build_request's
    header merging, Request and Response objects, the body's three async generators) cost the
    event loop about as much CPU as aiohttp itself (bench/upstream_call_cpu.py). Any other
    client (tests' `httpx.MockTransport`) goes through `AsyncClient.send`, as every call used
    to."""
    transport = client._transport
    if isinstance(transport, AiohttpTransport) and not client._mounts:
        return _AiohttpUpstream(transport, client.timeout)
    return _HttpxUpstream(client)


class _HttpxUpstream:
    def __init__(self, client: httpx.AsyncClient) -> None:
        self._client = client

    async def post(self, url: str, headers: Mapping[str, str], body: bytes, *,
                   stream: bool) -> UpstreamResponse:
        request = self._client.build_request("POST", url, content=body, headers=headers)
        return await self._client.send(request, stream=stream, follow_redirects=False)


class _AiohttpUpstream:
    """The calls httpx-aiohttp's `AiohttpTransport.handle_async_request` makes, on the same
    session (so one pool, closed with the client), with the same timeouts and the same mapping
    of aiohttp's exceptions to httpx's."""

    def __init__(self, transport: AiohttpTransport, timeout: httpx.Timeout) -> None:
        self._transport = transport
        # What the transport builds from httpx's timeout extension on every request: connect,
        # and read per read (never the whole call); aiohttp's `connect` includes pool queueing.
        self._timeout = aiohttp.ClientTimeout(sock_connect=timeout.connect,
                                              sock_read=timeout.read, connect=timeout.pool)

    def _session(self) -> aiohttp.ClientSession:
        # Made on first use, inside the running loop, and kept on the transport exactly as its
        # own first request would: `AsyncClient.aclose()` closes it.
        session = self._transport.client
        if not isinstance(session, aiohttp.ClientSession):
            session = self._transport.client = self._transport.get_client()
        return session

    async def post(self, url: str, headers: Mapping[str, str], body: bytes, *,
                   stream: bool) -> UpstreamResponse:
        with map_aiohttp_exceptions():
            # aiohttp decompresses what the headers offered (httpx's decoders did it before).
            response = await self._session().request(
                "POST", url, data=body, headers=headers, allow_redirects=False,
                compress=False, timeout=self._timeout)
            answer = _AiohttpResponse(response)
            if not stream:
                try:
                    await answer.aread()
                finally:
                    await answer.aclose()
            return answer


class _AiohttpResponse:
    __slots__ = ("_body", "_response", "headers", "status_code")

    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self._response = response
        self.status_code = response.status
        self.headers: Mapping[str, str] = response.headers
        self._body: bytes | None = None

    @property
    def content(self) -> bytes:
        if self._body is None:
            raise httpx.ResponseNotRead()
        return self._body

    @property
    def text(self) -> str:
        # As httpx decodes it: the declared charset, else UTF-8, never failing.
        try:
            return self.content.decode(self._response.charset or "utf-8", errors="replace")
        except LookupError:
            return self.content.decode("utf-8", errors="replace")

    async def aread(self) -> bytes:
        if self._body is None:
            with map_aiohttp_exceptions():
                self._body = await self._response.read()
        return self._body

    async def aiter_bytes(self) -> AsyncIterator[bytes]:
        # Each chunk as it arrives: an SSE decoder must never wait for a buffer to fill.
        with map_aiohttp_exceptions():
            async for chunk in self._response.content.iter_any():
                yield chunk

    async def aclose(self) -> None:
        with map_aiohttp_exceptions():
            self._response.release()
            await self._response.wait_for_close()
