"""`POST /v1/messages/count_tokens` (the Anthropic SDK's `messages.count_tokens`): how many
input tokens a Messages request would take.

A call pinned to an Anthropic model is forwarded to that backend's own count_tokens endpoint
and its answer returned as is (`x-ainfera-token-count: upstream`). Anything else (the router
name, whose backend is not chosen until the call is made; a model of another vendor, which has
no such endpoint in the protocol the caller speaks; an Anthropic model whose provider has no
API key here) gets the gateway's own estimate, the deliberately high one spend reservations
use (text characters / 3), marked as such: `"estimated": true` in the body and
`x-ainfera-token-count: estimated`. Either way it is a read-only call: no inference, no ledger
event, nothing reserved or debited; it is counted in `ainfera_token_counts_total` and logged.
"""

from __future__ import annotations

import logging
from typing import Any

import orjson
from litestar import Request, Response, post
from litestar.di import NamedDependency, Provide

from adapters.providers import AnthropicProvider
from adapters.providers.errors import ProviderError
from app.http.auth import provide_caller
from app.http.errors import (
    GatewayError,
    InvalidRequestError,
    NotFoundError,
    RateLimitError,
    UpstreamError,
)
from app.http.wire import FORWARDABLE_HEADERS
from app.runtime import Runtime
from app.services.tenancy import Caller
from domain.pricing import estimate_input_tokens
from domain.protocols.canonical import JSON, request_text_size
from domain.protocols.validate import InvalidRequest, check_bounds, check_messages_request

log = logging.getLogger("ainfera.count_tokens")


@post("/v1/messages/count_tokens", dependencies={"caller": Provide(provide_caller)},
      status_code=200)
async def count_tokens(request: Request[Any, Any, Any],
                       caller: NamedDependency[Caller]) -> Response[Any]:
    """Anthropic `messages.count_tokens`: forwarded to an Anthropic backend, else estimated."""
    runtime: Runtime = request.app.state.runtime
    body = _parse(await request.body())
    catalog = runtime.catalog
    requested = body["model"]
    model = catalog.model(requested)
    if model is None and requested != catalog.router.canonical \
            and requested not in catalog.router.aliases:
        raise NotFoundError(f"model {requested!r} not found: use 'ainfera-inference' or a model "
                            "from GET /v1/models", param="model", code="model_not_found")
    provider = runtime.providers.get(model.provider) if model is not None else None
    if model is not None and isinstance(provider, AnthropicProvider):
        headers = {name: request.headers[name] for name in FORWARDABLE_HEADERS
                   if request.headers.get(name)}
        try:
            counted = await provider.count_tokens(body, model.upstream_model,
                                                  client_headers=headers)
        except ProviderError as error:
            runtime.metrics.count_token_count("failed")
            raise _caller_error(error) from error
        runtime.metrics.count_token_count("upstream")
        log.info("count_tokens tenant=%s agent=%s model=%s mode=upstream", caller.tenant_id,
                 caller.agent_id, model.slug)
        return Response(content=counted.body, headers={
            "x-ainfera-token-count": "upstream",
            **({"x-ainfera-upstream-request-id": counted.upstream_request_id}
               if counted.upstream_request_id else {})})
    estimate = estimate_input_tokens(request_text_size(body))
    runtime.metrics.count_token_count("estimated")
    log.info("count_tokens tenant=%s agent=%s model=%s mode=estimated", caller.tenant_id,
             caller.agent_id, requested)
    return Response(content={"input_tokens": estimate, "estimated": True},
                    headers={"x-ainfera-token-count": "estimated"})


def _parse(raw: bytes) -> JSON:
    """A count_tokens body: a Messages request without `max_tokens`; 400 naming the field."""
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidRequestError(f"request body is not valid JSON: {exc}") from None
    if not isinstance(body, dict):
        raise InvalidRequestError("request body must be a JSON object")
    try:
        check_bounds(body)  # the one nesting limit, before anything recurses into the body
    except InvalidRequest as exc:
        raise InvalidRequestError(str(exc), param=exc.param) from None
    hint = body.pop("routing_hint", None)
    if hint is not None and not isinstance(hint, dict):
        raise InvalidRequestError("routing_hint must be an object", param="routing_hint")
    if not isinstance(body.get("model"), str) or not body["model"]:
        raise InvalidRequestError("model: a model name is required", param="model")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages \
            or not all(isinstance(m, dict) for m in messages):
        raise InvalidRequestError("messages: a non-empty list of objects is required",
                                  param="messages")
    try:
        check_messages_request(body)
    except InvalidRequest as exc:
        raise InvalidRequestError(str(exc), param=exc.param) from None
    return body


def _caller_error(error: ProviderError) -> GatewayError:
    message = f"token count from {error.provider} failed: {error.error_type}: {error.message}"
    if error.status == 429:
        return RateLimitError(message, code="upstream_rate_limited")
    gateway_error = UpstreamError(message, code="upstream_rejected" if error.status and
                                  400 <= error.status < 500 else "upstream_error")
    if error.status is not None and (400 <= error.status < 500 or error.status == 529):
        gateway_error.status = error.status
    return gateway_error
