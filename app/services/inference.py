"""The write path of one inference (DESIGN section 2): route, reserve, write Routed ahead of
any upstream byte, dispatch with fallback, then record the rest atomically and settle.

What it must never do: send a byte upstream before Routed is durable; leave an inference that
passed routing without exactly one Completed; debit from anything but the upstream's own
usage (or, where the upstream never said, a documented estimate that is marked as such).
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Awaitable, Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, TypeVar

import orjson

from adapters.budget import BudgetError, BudgetExceeded, CountersLost, Reservation
from adapters.providers import Provider, ProviderResult
from adapters.providers.errors import NotTranslatable, ProviderError
from app.http.errors import (
    GatewayError,
    InvalidRequestError,
    NotFoundError,
    RateLimitError,
    ServiceUnavailableError,
    UnprocessableError,
    UpstreamError,
)
from app.http.wire import ClientRequest, client_body, request_text_size
from app.runtime import Runtime
from app.services.tenancy import Caller
from domain.catalog import Model
from domain.context import audit_context
from domain.ids import public_inference_id
from domain.inference import Inference
from domain.pricing import cost_of, price_version, worst_case_cost
from domain.protocols.canonical import JSON, Usage
from domain.routing import (
    InvalidRoutingHint,
    RouteRequest,
    RoutingDecision,
    RoutingHint,
    UnknownModel,
    decision_to_routed_fields,
    estimate_input_tokens,
    route,
)

log = logging.getLogger("ainfera.gateway")

T = TypeVar("T")

# Long enough for the slowest stream the HTTP client allows (its read timeout is per read).
RESERVATION_TTL_S = 3600
# A call that finds the counters lost waits this long for the ledger before failing closed.
RESERVE_REBUILD_WAIT_S = 5.0


@dataclass
class Call:
    """One inference in flight: the aggregate, its decision and what settles it."""

    request: ClientRequest
    caller: Caller
    request_id: str
    decision: RoutingDecision
    inference: Inference
    started: float
    est_input_tokens: int
    reservation: Reservation | None = None
    errors: list[ProviderError] = field(default_factory=list)
    durable: bool = False  # Routed is committed: only then may anything go upstream
    upstream_s: float = 0.0  # time spent waiting on upstreams (to first event, for streams)
    position: int = 0  # the ledger position of the call's last committed event

    @property
    def public_id(self) -> str:
        return public_inference_id(self.inference.id, self.request.surface)

    @property
    def routed(self) -> bool:
        return self.decision.router != "direct"

    def audit(self) -> AbstractContextManager[Any]:
        return audit_context(str(self.caller.tenant_id), str(self.caller.agent_id),
                             self.request_id)

    def elapsed_ms(self) -> int:
        return int((time.monotonic() - self.started) * 1000)

    def headers(self) -> dict[str, str]:
        return {
            "x-ainfera-inference-id": self.public_id,
            "x-ainfera-agent-id": str(self.caller.agent_id),
            "x-ainfera-audit-url": f"/v1/inferences/{self.public_id}",
            "x-ainfera-router": self.decision.router,
            "x-ainfera-stream-mode": "native",
        }


def decide(runtime: Runtime, request: ClientRequest) -> tuple[RoutingDecision, int]:
    """Routing is pure; an unknown model is 404 and a bad hint 400, with no inference made."""
    canonical = request.canonical
    est_input = estimate_input_tokens(request_text_size(canonical))
    hint = RoutingHint(request.routing_hint.get("min_quality"),
                       request.routing_hint.get("routing_preference"))
    try:
        decision = route(
            RouteRequest(
                requested_model=request.requested_model,
                needs_tools=bool(canonical.get("tools")),
                estimated_input_tokens=est_input,
                max_output_tokens=int(canonical["max_tokens"]),
                routing_hint=hint,
            ),
            runtime.catalog,
            runtime.settings.routing_preference_live,
        )
    except UnknownModel:
        raise NotFoundError(
            f"model {request.requested_model!r} not found: use 'ainfera-inference' or a model "
            "from GET /v1/models", param="model", code="model_not_found") from None
    except InvalidRoutingHint as exc:
        raise InvalidRequestError(str(exc), param="routing_hint") from None
    if decision.alias_hit:
        log.info("router_alias_hit legacy=%s canonical=%s", decision.alias_hit,
                 runtime.catalog.router.canonical)
    return decision, est_input


async def begin(runtime: Runtime, request: ClientRequest, caller: Caller,
                request_id: str) -> Call:
    """Routes, reserves and makes Routed durable. Refusals are recorded, then raised."""
    started = time.monotonic()
    decision, est_input = decide(runtime, request)
    fields = decision_to_routed_fields(decision)
    with audit_context(str(caller.tenant_id), str(caller.agent_id), request_id):
        inference = Inference(
            api=request.surface, requested_model=request.requested_model,
            stream=request.stream, tools=len(request.canonical.get("tools") or []),
            request_digest=request.digest, **fields,
        )
    call = Call(request, caller, request_id, decision, inference, started, est_input)
    if decision.rejected_floor:
        await _refuse(runtime, call, "rejected_floor", UnprocessableError(
            f"no model clears the quality floor {decision.policy.min_quality}: "
            f"{decision.rejection}", param="routing_hint", code="rejected_floor"))
    await _reserve(runtime, call)
    try:
        await runtime.writer.save(inference)  # write-ahead: durable before any upstream byte
    except Exception:
        await runtime.release(call.reservation)
        raise
    call.durable = True
    return call


async def _reserve(runtime: Runtime, call: Call) -> None:
    day = datetime.now(UTC).date()
    max_tokens = int(call.request.canonical["max_tokens"])
    # The hold covers the dearest model the call may fall back to.
    amount = max(worst_case_cost(m, call.est_input_tokens, max_tokens)
                 for m in call.decision.fallback)
    cap = await runtime.agent_cap(call.caller.agent_id)
    agent = str(call.caller.agent_id)
    problem = "spend counters are lost"
    for attempt in range(2):
        try:
            call.reservation = await runtime.budget.reserve(
                agent, day, amount, cap, call.inference.id.hex, RESERVATION_TTL_S)
            return
        except BudgetExceeded as exc:
            await _refuse(runtime, call, "rejected_budget", RateLimitError(
                f"daily spend cap of ${exc.cap} USD for agent {agent} would be exceeded: "
                f"${exc.used} used or reserved today, this request may cost up to "
                f"${exc.requested}", code="budget_exceeded",
                headers={"x-should-retry": "false"}))
        except CountersLost:
            if attempt:
                break
            try:
                await runtime.rebuild_counters(wait=RESERVE_REBUILD_WAIT_S)
            except BudgetError as exc:
                problem = str(exc)
                break
        except BudgetError as exc:
            problem = str(exc)
            break
    if runtime.settings.budget_fail_open:
        log.warning("spend counters unavailable, failing open: %s", problem)
        return
    log.error("spend counters unavailable, refusing (fail closed): %s", problem)
    await _refuse(runtime, call, "rejected_budget", ServiceUnavailableError(
        "spend counters are unavailable and the gateway fails closed; retry shortly",
        code="budget_unavailable", headers={"retry-after": "1"}))


async def _refuse(runtime: Runtime, call: Call, status: str, error: GatewayError) -> None:
    with call.audit():
        call.inference.complete(status, None, None, call.elapsed_ms(), None)
    await runtime.writer.save(call.inference)
    runtime.metrics.count_request(call.request.surface, call.decision.router, status)
    error.headers.update(call.headers())
    raise error


def attempts_of(runtime: Runtime, call: Call) -> list[tuple[Model, Provider | None]]:
    """Who to try, in order: the fallback list for routed calls, the pinned model alone."""
    if not call.durable:
        runtime.metrics.count_dispatch_without_capture()
        raise AssertionError("refusing to dispatch before the Routed event is durable")
    models = call.decision.fallback if call.routed else call.decision.fallback[:1]
    return [(m, runtime.providers.get(m.provider)) for m in models]


def waited(runtime: Runtime, call: Call, model: Model, since: float) -> None:
    seconds = time.monotonic() - since
    call.upstream_s += seconds
    runtime.metrics.observe_upstream(model.provider, seconds)


def record_attempt_error(call: Call, model: Model, error: ProviderError) -> bool:
    """Records a failed attempt; True when the next candidate should be tried."""
    call.errors.append(error)
    with call.audit():
        call.inference.dispatch(model.provider, model.upstream_model, None, error.as_record())
    return call.routed and error.retryable


def not_configured(runtime: Runtime, model: Model) -> ProviderError:
    env = runtime.catalog.provider_of(model).api_key_env
    return ProviderError(model.provider, None, "provider_not_configured",
                         f"provider {model.provider!r} has no API key: set {env} in the "
                         "gateway's environment", retryable=True)


async def first_answer(
    runtime: Runtime, call: Call,
    attempt: Callable[[Provider, Model, bool], Awaitable[T]],
) -> tuple[Model, T]:
    """Tries the candidates in order until one answers: the fallback list for routed calls (on
    retryable errors only), the pinned model alone otherwise. `attempt` gets whether a later
    candidate remains. Every failed attempt is a Dispatched event; when none answers, the call
    is closed as failed and the caller gets the upstream's error."""
    attempts = attempts_of(runtime, call)
    for number, (model, provider) in enumerate(attempts, start=1):
        asked = time.monotonic()
        try:
            if provider is None:
                raise not_configured(runtime, model)
            answer = await attempt(provider, model, call.routed and number < len(attempts))
        except ProviderError as error:
            waited(runtime, call, model, asked)
            if record_attempt_error(call, model, error):
                continue
            break
        waited(runtime, call, model, asked)
        return model, answer
    await fail(runtime, call)
    raise AssertionError("fail() always raises")


async def complete(runtime: Runtime, call: Call) -> tuple[JSON, dict[str, str]]:
    """A non-streamed call: the first attempt that answers wins."""
    canonical, headers = call.request.canonical, call.request.client_headers
    model, result = await first_answer(
        runtime, call, lambda provider, model, _: provider.complete(
            canonical, model.upstream_model, client_headers=headers))
    await finish_success(runtime, call, model, result)
    body = client_body(call.request.surface, result.message, call.public_id, model.slug)
    # A dashboard read sent with `x-ainfera-after: N` waits until the projections hold it.
    return body, {**call.headers(), "x-ainfera-ledger-position": str(call.position)}


async def finish_success(runtime: Runtime, call: Call, model: Model,
                         result: ProviderResult) -> None:
    status = "fallback_succeeded" if call.errors else "succeeded"
    digest = "sha256:" + hashlib.sha256(orjson.dumps(result.message)).hexdigest()
    with call.audit():
        call.inference.dispatch(model.provider, model.upstream_model,
                                result.upstream_request_id, None)
    await close(runtime, call, model, status, result.message.get("stop_reason"), result.usage,
                digest, streamed=False)


async def close(runtime: Runtime, call: Call, model: Model | None, status: str,
                stop_reason: str | None, usage: Usage | None, digest: str | None,
                streamed: bool, output_chars: int = 0) -> None:
    """Records Completed and, when anything was consumed, Debited; then settles the hold.

    Everything is queued before the first await, so a caller cancelled while waiting here
    (a client gone mid-stream) still records and settles."""
    known = usage if usage and any(v is not None for v in usage.values()) else None
    cost, version = charge(model, known, call.est_input_tokens, output_chars,
                           finished=status in {"succeeded", "fallback_succeeded"})
    with call.audit():
        call.inference.complete(status, stop_reason, usage_record(known),
                                call.elapsed_ms(), digest)
        if cost is not None:
            call.inference.debit(cost, version, call.reservation.reservation_id
                                 if call.reservation else None)
    committed = runtime.writer.submit(call.inference)
    runtime.settle_later(call.reservation, cost or Decimal(0))
    runtime.metrics.count_request(call.request.surface, call.decision.router, status)
    if not streamed:
        runtime.metrics.observe_overhead(call.request.surface,
                                         max(time.monotonic() - call.started - call.upstream_s, 0))
    call.position = await committed


def charge(model: Model | None, usage: Usage | None, est_input: int, output_chars: int,
           finished: bool = True) -> tuple[Decimal | None, str]:
    """The cost to debit once an upstream served the call (`model` set), from the upstream's
    own counts. Where it never gave a count (a response without usage, a stream cut before its
    usage frame), or gave only a provisional one (the output count in a stream's first event,
    when the stream did not finish), what we measured fills in: the request estimate for
    input, delivered characters for output; the debit is then marked `+estimated`. Nothing is
    debited when no upstream served the call."""
    if model is None:
        return None, ""
    reported: Usage = usage or {"input_tokens": None, "output_tokens": None,
                                "cache_read": None, "cache_write": None}
    filled: Usage = dict(reported)  # type: ignore[assignment]
    if filled["input_tokens"] is None:
        filled["input_tokens"] = est_input
    measured_output = estimate_input_tokens(output_chars)
    if filled["output_tokens"] is None or (
            not finished and filled["output_tokens"] < measured_output):
        filled["output_tokens"] = measured_output
    version = price_version(model) + ("" if filled == reported else "+estimated")
    return cost_of(model, usage_record(filled)), version


def usage_record(usage: Usage | None) -> dict[str, int | None] | None:
    if usage is None:
        return None
    return {"input_tokens": usage["input_tokens"], "output_tokens": usage["output_tokens"],
            "cache_read": usage["cache_read"], "cache_write": usage["cache_write"]}


async def fail(runtime: Runtime, call: Call) -> None:
    """Every attempt failed: one Completed(failed), nothing debited, the caller told why."""
    await close(runtime, call, None, "failed", None, None, None, streamed=False)
    raise upstream_error(call)


def upstream_error(call: Call) -> GatewayError:
    last = call.errors[-1]
    tried = "; ".join(f"{e.provider}: {e.error_type} ({e.status})" for e in call.errors)
    message = f"upstream failed after {len(call.errors)} attempt(s): {tried}: {last.message}"
    error: GatewayError
    if isinstance(last, NotTranslatable):
        # Every backend tried speaks a protocol that cannot carry this request (an image
        # source a vendor does not take, a tool result without its call): the client can
        # fix it, a retry cannot.
        error = InvalidRequestError(f"no backend tried can take this request: {tried}: "
                                    f"{last.message}", code="not_translatable")
    elif last.status == 429:
        error = RateLimitError(message, code="upstream_rate_limited")
    elif last.status is not None and 400 <= last.status < 500:
        error = UpstreamError(message, code="upstream_rejected")
        error.status = last.status
    else:
        error = UpstreamError(message)
        if last.status == 529:
            error.status = 529
    error.headers.update(call.headers())
    return error
