"""Provider errors as data, and the one mapping from httpx's exceptions to them.

    ProviderError                 provider, status, error_type, message, retryable
     +-- ConnectionFailed         could not connect, or the connection broke before a response
     +-- UpstreamTimeout          connect/read/pool timeout, or HTTP 408
     +-- RateLimited              HTTP 429
     +-- UpstreamServerError      HTTP 5xx (incl. Anthropic's 529 overloaded)
     +-- UpstreamRejected         any other 4xx: the request itself is at fault
     +-- InvalidUpstreamResponse  a 2xx body we could not read or translate
     +-- NotTranslatable          the request uses what this backend's protocol cannot carry
     +-- MidStreamFailure         the stream broke after events were handed to the caller

When every candidate of a call fails, the write path raises its own FallbackExhausted
(app/services/calls.py), which lists these errors in order.

`retryable` says whether another attempt (on another backend) may succeed: connection errors,
timeouts, 429 and 5xx are; an upstream's `x-should-retry` header overrides that. A request
one protocol cannot carry is retryable too: a backend of another kind may take it. A mid-stream
failure is never retryable: the caller already forwarded part of the answer.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import aiohttp
import httpx


class ProviderError(Exception):
    default_retryable = False

    def __init__(
        self,
        provider: str,
        status: int | None,
        error_type: str,
        message: str,
        retryable: bool | None = None,
        retry_after: float | None = None,
    ) -> None:
        where = f" ({status})" if status else ""
        super().__init__(f"{provider}: {error_type}{where}: {message}")
        self.provider = provider
        self.status = status
        self.error_type = error_type
        self.message = message
        self.retryable = self.default_retryable if retryable is None else retryable
        self.retry_after = retry_after

    def as_record(self) -> dict[str, object]:
        """The `error` field of a `Dispatched` event."""
        return {"type": self.error_type, "status": self.status, "retryable": self.retryable}


class ConnectionFailed(ProviderError):
    default_retryable = True


class UpstreamTimeout(ProviderError):
    default_retryable = True


class RateLimited(ProviderError):
    default_retryable = True


class UpstreamServerError(ProviderError):
    default_retryable = True


class UpstreamRejected(ProviderError):
    default_retryable = False


class InvalidUpstreamResponse(ProviderError):
    default_retryable = False


class NotTranslatable(ProviderError):
    """`param` names the request field at fault, when one is."""

    default_retryable = True

    def __init__(self, provider: str, status: int | None, error_type: str, message: str,
                 retryable: bool | None = None, retry_after: float | None = None, *,
                 param: str | None = None) -> None:
        super().__init__(provider, status, error_type, message, retryable, retry_after)
        self.param = param


class MidStreamFailure(ProviderError):
    default_retryable = False


def error_for_status(
    provider: str,
    status: int,
    error_type: str,
    message: str,
    *,
    should_retry: bool | None = None,
    retry_after: float | None = None,
) -> ProviderError:
    """The error an upstream's non-2xx answer (or in-stream error of that status) means."""
    cls: type[ProviderError]
    if status == 429:
        cls = RateLimited
    elif status == 408:
        cls = UpstreamTimeout
    elif status >= 500:
        cls = UpstreamServerError
    else:
        cls = UpstreamRejected
    return cls(provider, status, error_type, message, should_retry, retry_after)


@contextlib.contextmanager
def map_httpx_errors(provider: str) -> Iterator[None]:
    """Re-raises httpx's transport exceptions as our most specific ProviderError.

    The aiohttp transport reports a refused connection, and a server that hung up, as
    `httpx.ConnectTimeout` (it maps every aiohttp ClientConnectionError there), so a connect
    "timeout" caused by an aiohttp connection error that is not a timeout is a connection
    failure.
    """
    try:
        yield
    except httpx.HTTPError as exc:
        raise provider_error_from(provider, exc) from exc


def provider_error_from(provider: str, exc: httpx.HTTPError) -> ProviderError:
    message = str(exc) or type(exc).__name__
    cause = exc.__cause__
    if (
        isinstance(exc, httpx.ConnectTimeout)
        and isinstance(cause, aiohttp.ClientConnectionError)
        and not isinstance(cause, TimeoutError)
    ):
        connecting = isinstance(cause, aiohttp.ClientConnectorError)
        return ConnectionFailed(
            provider, None, "connect_error" if connecting else "network_error", message
        )
    if isinstance(exc, httpx.TimeoutException):
        return UpstreamTimeout(provider, None, "timeout", message)
    if isinstance(exc, httpx.ConnectError):
        return ConnectionFailed(provider, None, "connect_error", message)
    if isinstance(exc, httpx.TransportError):
        return ConnectionFailed(provider, None, "network_error", message)
    return InvalidUpstreamResponse(provider, None, "http_error", message)
