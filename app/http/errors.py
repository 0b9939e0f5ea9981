"""The app-wide error map: our errors (the write path's, the edge's and Litestar's) become a
status, headers and the caller's protocol shape, here and nowhere else.

Handlers raise; they never build error bodies. The caller's protocol is the route's: the
OpenAI surface declares `opt={"protocol": "openai"}` (`{"error": {"message", "type", "param",
"code"}}`), every other route speaks Anthropic (`{"type": "error", "error": {"type",
"message"}, "request_id"}`). Only a request that matched no route at all (404/405) has its
protocol guessed from the path. No traceback ever reaches a client.
"""

from __future__ import annotations

import logging
import sqlite3
from typing import Any

import psycopg
from litestar import Request, Response
from litestar.exceptions import (
    HTTPException,
    MethodNotAllowedException,
    NotFoundException,
    ValidationException,
)
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from adapters.providers.errors import NotTranslatable
from adapters.store import StoreConflictError, StoreUnavailableError
from adapters.writer import WriteFailedError
from app.http.access_log import log_unrouted
from app.http.headers import inference_headers
from app.services.calls import (
    CannotServe,
    FallbackExhausted,
    InferenceError,
    InferenceRefused,
    InvalidRequest,
    ModelNotFound,
    RecordingIncomplete,
)
from app.services.read_side import ProjectionBehindError, ReadSideUnavailableError
from domain.protocols.validate import MAX_BODY_BYTES

log = logging.getLogger("ainfera.errors")

RETRY_AFTER_S = "1"

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


OPENAI = "openai"
ANTHROPIC = "anthropic"


def protocol_of(request: Request[Any, Any, Any]) -> str:
    """The protocol the caller speaks: its route's declaration."""
    handler = request.scope.get("route_handler")
    if handler is not None:
        return str(handler.opt.get("protocol", ANTHROPIC))
    # No route matched (404/405): the path is all there is to go on.
    return OPENAI if request.url.path.startswith("/v1/chat/") else ANTHROPIC


def from_inference_error(exc: InferenceError) -> GatewayError:
    """What a write-path error means over HTTP: status, code and the headers that point at
    what was recorded."""
    error: GatewayError
    if isinstance(exc, ModelNotFound):
        error = NotFoundError(exc.message, param="model", code="model_not_found")
    elif isinstance(exc, InvalidRequest):
        error = InvalidRequestError(exc.message, param=exc.param)
    elif isinstance(exc, CannotServe):
        if exc.reason == "not_translatable":
            error = InvalidRequestError(exc.message, param=exc.param, code=exc.reason)
        else:
            error = UnprocessableError(exc.message, param=exc.param, code=exc.reason)
    elif isinstance(exc, InferenceRefused):
        error = _refusal(exc)
    elif isinstance(exc, FallbackExhausted):
        error = _upstream_failure(exc)
    elif isinstance(exc, RecordingIncomplete):
        # Pending: the store is down and the writer holds the events, so a retry shortly is
        # right. Refused: the ledger already holds another end for the call; the message
        # says which.
        error = (ServiceUnavailableError(exc.message, code="ledger_unavailable")
                 if exc.pending else ConflictError(exc.message, code="recording_refused"))
    else:
        error = GatewayError(exc.message)
    if exc.recorded is not None:
        error.headers.update(inference_headers(exc.recorded))
    return error


def _refusal(exc: InferenceRefused) -> GatewayError:
    if exc.reason == "rejected_floor":
        return UnprocessableError(exc.message, param="routing_hint", code="rejected_floor")
    if exc.reason.endswith("_not_supported_by_backend"):
        # The same 422 and code as a pinned model lacking the capability (CannotServe).
        return UnprocessableError(exc.message, param="model", code=exc.reason)
    if exc.reason == "budget_exceeded":
        return RateLimitError(exc.message, code="budget_exceeded",
                              headers={"x-should-retry": "false"})
    return ServiceUnavailableError(exc.message, code=exc.reason, headers={"retry-after": "1"})


def _upstream_failure(exc: FallbackExhausted) -> GatewayError:
    last = exc.attempts[-1]
    error: GatewayError
    if all(e.error_type == "provider_not_configured" for e in exc.attempts):
        # The gateway's own configuration is missing: a retry fails the same way, so the SDKs
        # must not retry (each retry would record another failed inference).
        error = UpstreamError("no provider could take this call: "
                              + "; ".join(dict.fromkeys(e.message for e in exc.attempts)),
                              code="provider_not_configured",
                              headers={"x-should-retry": "false"})
    elif isinstance(last, NotTranslatable):
        # Every backend tried speaks a protocol that cannot carry this request (an image
        # source a vendor does not take, a tool result without its call): the client can
        # fix it, a retry cannot.
        error = InvalidRequestError(f"no backend tried can take this request: {exc.tried}: "
                                    f"{last.message}", code="not_translatable",
                                    param=last.param)
    elif last.status == 429:
        error = RateLimitError(exc.message, code="upstream_rate_limited")
    elif last.status is not None and 400 <= last.status < 500:
        error = UpstreamError(exc.message, code="upstream_rejected")
        error.status = last.status
    else:
        error = UpstreamError(exc.message)
        if last.status == 529:
            error.status = 529
    return error


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
    body = error_body(protocol_of(request), status, message, request_id, param, code)
    out_headers = dict(headers or {})
    if code is not None:
        # Anthropic's error body has no place for a code; the header gives it to callers of
        # both surfaces (OpenAI's body carries it too, as `error.code`).
        out_headers.setdefault("x-ainfera-error-code", code)
    if status in (400, 401, 403, 404, 409, 413, 422):
        # The SDKs would retry 409; a refused request is the same on every retry.
        out_headers.setdefault("x-should-retry", "false")
    elif status == 503:
        # Something we depend on is down for now: tell the SDKs to retry, and when.
        out_headers.setdefault("x-should-retry", "true")
        out_headers.setdefault("retry-after", RETRY_AFTER_S)
    return Response(content=body, status_code=status, headers=out_headers)


def handle_gateway_error(request: Request[Any, Any, Any], exc: GatewayError) -> Response[Any]:
    return _respond(request, exc.status, exc.message, exc.param, exc.code, exc.headers)


def handle_inference_error(request: Request[Any, Any, Any],
                           exc: InferenceError) -> Response[Any]:
    return handle_gateway_error(request, from_inference_error(exc))


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
    elif status == 413:
        message = f"request body is larger than the {MAX_BODY_BYTES} bytes a request may have"
    else:
        message = exc.detail or "request failed"
    log_unrouted(request.scope, status)
    return _respond(request, status, message, headers=exc.headers)


def handle_store(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    if isinstance(exc, StoreConflictError):
        return _respond(request, 409, str(exc), code="conflict")
    log.error("store failure on %s: %s", request.url.path, exc)
    # A write error says itself what was and was not recorded; a read recorded nothing.
    message = str(exc) if isinstance(exc, WriteFailedError) else (
        "the ledger store is unavailable; nothing was recorded for this request, retry shortly")
    return _respond(request, 503, message, code="store_unavailable")


def handle_unavailable(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    """A dependency that is down for now (the read side, the idempotency table, a driver
    error no port translated): 503 with retry advice, never a 500."""
    log.error("%s on %s: %s", type(exc).__name__, request.url.path, _first_line(exc))
    if isinstance(exc, ReadSideUnavailableError | ProjectionBehindError):
        message = f"the read models are unavailable: {_first_line(exc)}"
    else:
        message = "a database the gateway depends on is unavailable; retry shortly"
    return _respond(request, 503, message, code="unavailable")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]


def handle_unexpected(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return _respond(request, 500, "internal error; the request id identifies it in our logs",
                    code="internal_error")


EXCEPTION_HANDLERS: dict[Any, Any] = {
    GatewayError: handle_gateway_error,
    InferenceError: handle_inference_error,
    ValidationException: handle_validation,
    HTTPException: handle_http,
    StoreUnavailableError: handle_store,
    StoreConflictError: handle_store,
    WriteFailedError: handle_store,
    ReadSideUnavailableError: handle_unavailable,
    ProjectionBehindError: handle_unavailable,
    # Driver errors that escaped every port's translation still mean "down for now".
    psycopg.OperationalError: handle_unavailable,
    psycopg.InterfaceError: handle_unavailable,
    sqlite3.OperationalError: handle_unavailable,
    RedisConnectionError: handle_unavailable,
    RedisTimeoutError: handle_unavailable,
    Exception: handle_unexpected,
}
