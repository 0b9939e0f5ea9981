"""The app-wide error map: our errors (and Litestar's) become the caller's protocol shape.

Handlers raise; they never build error bodies. The caller's protocol is read from the path:
`/v1/chat/...` speaks OpenAI (`{"error": {"message", "type", "param", "code"}}`), everything
else speaks Anthropic (`{"type": "error", "error": {"type", "message"}, "request_id"}`). No
traceback ever reaches a client.
"""

from __future__ import annotations

import logging
from typing import Any

from litestar import Request, Response
from litestar.exceptions import (
    HTTPException,
    MethodNotAllowedException,
    NotFoundException,
    ValidationException,
)

from adapters.store import StoreConflictError, StoreUnavailableError
from adapters.writer import WriteFailedError

log = logging.getLogger("ainfera.errors")

_ANTHROPIC_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    405: "invalid_request_error",
    409: "invalid_request_error",
    413: "request_too_large",
    422: "invalid_request_error",
    429: "rate_limit_error",
    500: "api_error",
    502: "api_error",
    503: "api_error",
    504: "api_error",
    529: "overloaded_error",
}
_OPENAI_TYPES = {
    400: "invalid_request_error",
    401: "invalid_request_error",
    403: "invalid_request_error",
    404: "invalid_request_error",
    405: "invalid_request_error",
    409: "invalid_request_error",
    413: "invalid_request_error",
    422: "invalid_request_error",
    429: "rate_limit_error",
}


class GatewayError(Exception):
    """An error with a status and a message fit for the caller; subclasses set the status."""

    status = 500
    code: str | None = None

    def __init__(
        self, message: str, *, param: str | None = None, code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        if code is not None:
            self.code = code
        self.headers = headers or {}


class InvalidRequestError(GatewayError):
    status = 400
    code = "invalid_request"


class AuthenticationError(GatewayError):
    status = 401
    code = "invalid_api_key"


class PermissionDeniedError(GatewayError):
    status = 403
    code = "permission_denied"


class NotFoundError(GatewayError):
    status = 404
    code = "not_found"


class ConflictError(GatewayError):
    status = 409
    code = "conflict"


class UnprocessableError(GatewayError):
    status = 422
    code = "unprocessable"


class RateLimitError(GatewayError):
    status = 429
    code = "rate_limited"


class UpstreamError(GatewayError):
    status = 502
    code = "upstream_error"


class ServiceUnavailableError(GatewayError):
    status = 503
    code = "unavailable"


def protocol_of(path: str) -> str:
    return "openai" if path.startswith("/v1/chat/") else "anthropic"


def error_body(protocol: str, status: int, message: str, request_id: str | None,
               param: str | None = None, code: str | None = None) -> dict[str, Any]:
    if protocol == "openai":
        return {
            "error": {
                "message": message,
                "type": _OPENAI_TYPES.get(status, "api_error" if status >= 500 else
                                          "invalid_request_error"),
                "param": param,
                "code": code,
            }
        }
    return {
        "type": "error",
        "error": {"type": _ANTHROPIC_TYPES.get(status, "api_error" if status >= 500 else
                                               "invalid_request_error"), "message": message},
        "request_id": request_id,
    }


def _respond(request: Request[Any, Any, Any], status: int, message: str,
             param: str | None = None, code: str | None = None,
             headers: dict[str, str] | None = None) -> Response[Any]:
    request_id = request.scope.get("state", {}).get("request_id")
    body = error_body(protocol_of(request.url.path), status, message, request_id, param, code)
    out_headers = dict(headers or {})
    if status in (400, 401, 403, 404, 409, 422):
        # The SDKs would retry 409; a refused request is the same on every retry.
        out_headers.setdefault("x-should-retry", "false")
    return Response(content=body, status_code=status, headers=out_headers)


def handle_gateway_error(request: Request[Any, Any, Any], exc: GatewayError) -> Response[Any]:
    return _respond(request, exc.status, exc.message, exc.param, exc.code, exc.headers)


def handle_validation(request: Request[Any, Any, Any], exc: ValidationException) -> Response[Any]:
    detail = exc.detail or "invalid request"
    extra = exc.extra
    if isinstance(extra, list) and extra:
        first = extra[0]
        if isinstance(first, dict) and first.get("message"):
            key = first.get("key")
            detail = f"{first['message']}" + (f" (at {key})" if key else "")
    return _respond(request, 400, f"invalid request body: {detail}", code="invalid_request")


def handle_http(request: Request[Any, Any, Any], exc: HTTPException) -> Response[Any]:
    status = exc.status_code
    if isinstance(exc, NotFoundException):
        message = f"no such endpoint: {request.method} {request.url.path}"
    elif isinstance(exc, MethodNotAllowedException):
        message = f"method {request.method} is not allowed on {request.url.path}"
    else:
        message = exc.detail or "request failed"
    return _respond(request, status, message, headers=exc.headers)


def handle_store(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    if isinstance(exc, StoreConflictError):
        return _respond(request, 409, str(exc), code="conflict")
    log.error("store failure on %s: %s", request.url.path, exc)
    return _respond(request, 503, "the ledger store is unavailable; nothing was recorded "
                    "for this request, retry later", code="store_unavailable",
                    headers={"retry-after": "1"})


def handle_unexpected(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return _respond(request, 500, "internal error; the request id identifies it in our logs",
                    code="internal_error")


EXCEPTION_HANDLERS: dict[Any, Any] = {
    GatewayError: handle_gateway_error,
    ValidationException: handle_validation,
    HTTPException: handle_http,
    StoreUnavailableError: handle_store,
    StoreConflictError: handle_store,
    WriteFailedError: handle_store,
    Exception: handle_unexpected,
}
