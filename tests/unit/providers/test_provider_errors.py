"""Provider errors as data: status classes, retryability, and the httpx exception mapping."""

from __future__ import annotations

import aiohttp
import httpx
import pytest

from adapters.providers.errors import (
    ConnectionFailed,
    InvalidUpstreamResponse,
    ProviderError,
    RateLimited,
    UpstreamRejected,
    UpstreamServerError,
    UpstreamTimeout,
    error_for_status,
    map_httpx_errors,
)


@pytest.mark.parametrize(
    ("status", "cls", "retryable"),
    [
        (400, UpstreamRejected, False),
        (401, UpstreamRejected, False),
        (403, UpstreamRejected, False),
        (404, UpstreamRejected, False),
        (413, UpstreamRejected, False),
        (408, UpstreamTimeout, True),
        (429, RateLimited, True),
        (500, UpstreamServerError, True),
        (503, UpstreamServerError, True),
        (529, UpstreamServerError, True),
    ],
)
def test_status_classes(status: int, cls: type[ProviderError], retryable: bool) -> None:
    error = error_for_status("p", status, "t", "m")
    assert type(error) is cls
    assert error.retryable is retryable
    assert error.as_record() == {"type": "t", "status": status, "retryable": retryable}


def test_the_upstream_can_say_whether_to_retry() -> None:
    assert error_for_status("p", 500, "api_error", "m", should_retry=False).retryable is False
    assert error_for_status("p", 409, "conflict", "m", should_retry=True).retryable is True


def mapped(exc: Exception) -> ProviderError:
    with pytest.raises(ProviderError) as caught, map_httpx_errors("p"):
        raise exc
    assert caught.value.__cause__ is exc
    return caught.value


def with_cause(exc: httpx.HTTPError, cause: BaseException) -> httpx.HTTPError:
    exc.__cause__ = cause
    return exc


@pytest.mark.parametrize(
    ("exc", "cls", "error_type"),
    [
        (httpx.ConnectError("refused"), ConnectionFailed, "connect_error"),
        (httpx.ConnectTimeout("slow"), UpstreamTimeout, "timeout"),
        (httpx.ReadTimeout("slow"), UpstreamTimeout, "timeout"),
        (httpx.PoolTimeout("busy"), UpstreamTimeout, "timeout"),
        (httpx.ReadError("reset"), ConnectionFailed, "network_error"),
        (httpx.RemoteProtocolError("garbage"), ConnectionFailed, "network_error"),
        (httpx.DecodingError("bad gzip"), InvalidUpstreamResponse, "http_error"),
        # The aiohttp transport maps every aiohttp connection error to ConnectTimeout.
        (with_cause(httpx.ConnectTimeout("x"), aiohttp.ServerDisconnectedError()),
         ConnectionFailed, "network_error"),
        (with_cause(httpx.ConnectTimeout("x"), aiohttp.ConnectionTimeoutError()),
         UpstreamTimeout, "timeout"),
    ],
)  # fmt: skip
def test_httpx_exceptions_map_to_the_most_specific_error(
    exc: httpx.HTTPError, cls: type[ProviderError], error_type: str
) -> None:
    error = mapped(exc)
    assert type(error) is cls
    assert error.error_type == error_type
    assert error.status is None
