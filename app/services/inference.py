"""The write path of one inference (DESIGN section 2): route, reserve, write Routed ahead of
any upstream byte, dispatch with fallback, record the rest atomically and settle.

`InferenceService.run()` owns every step and every guarantee of it:
- nothing goes upstream before Routed is durable (`_attempts` refuses, and counts it);
- an inference that passed routing gets exactly one Completed, whatever ends it (`run`'s
  handler for the unexpected, the relay's `finally` for streams);
- a debit comes from the upstream's own usage or, where it never said, from a documented
  estimate marked as such (`domain.pricing.charge`).

It speaks no protocol: it takes an `InferenceRequest` (already parsed by the HTTP edge), returns
a `Completion` or a `StreamingCompletion`, and raises the errors at the bottom of this module,
each carrying what the ledger holds of the call (`recorded`). Status codes, headers and the
caller's error shape are the HTTP edge's (app/http/errors.py).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, TypeVar
from uuid import UUID

from adapters.budget import BudgetError, BudgetExceeded, CountersLost
from adapters.providers import Provider, ProviderResult
from adapters.providers.errors import ProviderError, UpstreamTimeout
from adapters.writer import GroupCommitWriter, WriteFailedError
from app.services.call_report import note_close
from app.services.calls import (
    CannotServe,
    Completion,
    EncoderFactory,
    FallbackExhausted,
    InferenceError,
    InferenceRefused,
    InferenceRequest,
    InFlight,
    InvalidRequest,
    ModelNotFound,
    RecordingIncomplete,
    StreamingCompletion,
)
from app.services.relay import relay, response_digest
from app.services.router_settings import PreferenceGate
from app.services.spend import SpendCaps
from app.services.tenancy import Caller
from app.telemetry import GatewayMetrics
from domain.catalog import Catalog, Model
from domain.context import audit_context
from domain.inference import Inference, Status
from domain.money import usd_text
from domain.pricing import charge, estimate_input_tokens, usage_record, worst_case_cost
from domain.protocols.canonical import Usage
from domain.protocols.fates import backend_name
from domain.protocols.limits import DEFAULT_MAX_TOKENS, output_ceiling
from domain.routing import (
    DIRECT,
    InvalidRoutingHint,
    RouteRequest,
    RoutingDecision,
    RoutingHint,
    UnknownModel,
    decision_to_routed_fields,
    route,
    unmet_needs,
    unsupported_code,
)

log = logging.getLogger("ainfera.inference")

T = TypeVar("T")

# Long enough for the slowest stream the HTTP client allows (its read timeout is per read).
RESERVATION_TTL_S = 3600
# A call that finds the counters lost waits this long for the ledger before failing closed.
RESERVE_REBUILD_WAIT_S = 5.0
# How long a call waits for its closing events (or a stream for its Dispatched) to be
# committed before telling the caller the ledger is behind; the events stay queued.
RECORD_WAIT_S = 3.0


class InferenceService:
    """Built once by the composition root with exactly what the write path needs."""

    def __init__(self, *, writer: GroupCommitWriter, spend: SpendCaps,
                 providers: Mapping[str, Provider], catalog: Catalog, metrics: GatewayMetrics,
                 preference_gate: PreferenceGate, fail_open: bool, instance_id: str | None = None,
                 attempt_deadline_s: float | None = None,
                 record_wait_s: float = RECORD_WAIT_S) -> None:
        self._writer = writer
        self._spend = spend
        self._providers = providers
        self._catalog = catalog
        self._metrics = metrics
        self._preference_gate = preference_gate
        self._fail_open = fail_open
        self._instance_id = instance_id
        self._attempt_deadline_s = attempt_deadline_s
        self._record_wait_s = record_wait_s
        # Inferences this process is serving: routed, not yet recorded as closed. Crash repair
        # in this process never touches them, and closes this process's other open ones.
        self._in_flight: set[UUID] = set()

    def is_live(self, inference_id: UUID) -> bool:
        """Whether this process is still serving the inference (repair asks)."""
        return inference_id in self._in_flight

    @property
    def in_flight(self) -> int:
        return len(self._in_flight)

    async def run(self, request: InferenceRequest, caller: Caller, request_id: str,
                  encoder: EncoderFactory) -> Completion | StreamingCompletion:
        """Serves one call. Refusals and upstream failures are recorded, then raised."""
        call = await self._begin(request, caller, request_id)
        try:
            if request.stream:
                return await self._open_stream(call, encoder)
            return await self._complete(call)
        except InferenceError:
            raise
        except BaseException as exc:
            # Whatever went wrong (a bug, the caller cancelled), the inference gets its one
            # Completed before the exception goes on.
            if not call.inference.is_completed:
                status = (Status.CANCELLED if isinstance(exc, asyncio.CancelledError)
                          else Status.FAILED)
                await self._close(call, None, status, None, None, None, streamed=False)
            raise

    # -- routing, reservation, write-ahead ------------------------------------------------

    def _decide(self, request: InferenceRequest,
                preference_live: bool) -> tuple[RoutingDecision, int]:
        """Routing is pure; an unknown model or a bad hint is refused with nothing recorded,
        and so is a pinned model that cannot serve the request (`_check_pinned`).
        `preference_live` is the gate as this call sees it (recorded in its policy)."""
        est_input = estimate_input_tokens(request.text_size)
        hint = RoutingHint(request.routing_hint.get("min_quality"),
                           request.routing_hint.get("routing_preference"))
        route_request = RouteRequest(
            requested_model=request.requested_model,
            needs_tools=request.tool_count > 0,
            estimated_input_tokens=est_input,
            max_output_tokens=request.max_output_tokens or DEFAULT_MAX_TOKENS,
            routing_hint=hint,
            needs=request.needs,
            untranslatable={kind: tuple(r.field for r in found)
                            for kind, found in request.refusals.items() if found},
        )
        try:
            decision = route(route_request, self._catalog, preference_live)
        except UnknownModel:
            raise ModelNotFound(request.requested_model) from None
        except InvalidRoutingHint as exc:
            raise InvalidRequest(str(exc), param="routing_hint") from None
        if decision.alias_hit:
            log.info("router_alias_hit legacy=%s canonical=%s", decision.alias_hit,
                     self._catalog.router.canonical)
        if decision.router == DIRECT and decision.chosen is not None:
            self._check_pinned(request, route_request, decision.chosen)
        return decision, est_input

    def _check_pinned(self, request: InferenceRequest, route_request: RouteRequest,
                      model: Model) -> None:
        """A pinned model whose protocol would refuse a field, or that lacks a capability the
        answer needs: the request and the catalog say so before anything is recorded."""
        kind = self._catalog.provider_of(model).kind
        refused = request.refusals.get(kind, ())
        if refused:
            raise CannotServe(
                "not_translatable",
                f"model {model.slug!r} is served by {backend_name(kind)}, which cannot take "
                "this request: " + "; ".join(str(r) for r in refused),
                param=refused[0].field)
        protocol = self._catalog.protocol_of(model)
        unmet = unmet_needs(model, route_request, protocol)
        if unmet:
            lacking = _spoken(unmet)
            raise CannotServe(
                unsupported_code(unmet[0]),
                f"model {model.slug!r} does not support {lacking}, which this request needs "
                f"(catalog: {model.why_not(unmet[0], protocol)}); use "
                f"{self._catalog.router.canonical!r}, which only picks models that support "
                f"{lacking}, or {self._capable(unmet)}",
                param="model")

    def _capable(self, needs: tuple[str, ...]) -> str:
        """The hint's second half: the served slugs (GET /v1/models) that have `needs`."""
        slugs = [m.slug for m in self._catalog.models if m.provider in self._providers
                 and all(m.supports(n, self._catalog.protocol_of(m)) for n in needs)]
        if not slugs:
            return f"note that no model this gateway serves supports {_spoken(needs)}"
        return "pin one that does: " + ", ".join(slugs)

    @staticmethod
    def _rejection(request: InferenceRequest, decision: RoutingDecision) -> str:
        """Why no model may serve a routed call, naming any field a protocol would refuse."""
        reason = f"no model clears the quality floor {decision.policy.min_quality}: " \
                 f"{decision.rejection}"
        if decision.unsupported:
            reason = (f"no model in the catalog supports {_spoken(decision.unsupported)} "
                      f"(over the protocol its provider speaks), which this request needs: "
                      f"{decision.rejection}")
        elif {c.rejection_reason for c in decision.candidates} != {"below_floor"}:
            reason = str(decision.rejection)  # capabilities, not the floor, ruled them out
        refused = [f"{backend_name(kind)} cannot take " + "; ".join(str(r) for r in found)
                   for kind, found in sorted(request.refusals.items()) if found]
        return reason + (" (" + "; ".join(refused) + ")" if refused else "")

    async def _begin(self, request: InferenceRequest, caller: Caller,
                     request_id: str) -> InFlight:
        """Routes, reserves and makes Routed durable."""
        started = time.monotonic()
        decision, est_input = self._decide(request, await self._preference_gate.live())
        fields = decision_to_routed_fields(decision)
        with audit_context(str(caller.tenant_id), str(caller.agent_id), request_id):
            inference = Inference(
                api=request.surface, requested_model=request.requested_model,
                stream=request.stream, tools=request.tool_count,
                request_digest=request.digest, instance_id=self._instance_id, **fields,
            )
        call = InFlight(request, caller, request_id, decision, inference, started, est_input)
        if decision.rejected_floor:
            # Recorded as rejected_floor (no model may serve it) either way; when a capability
            # no model has is why, the caller gets the same code a pinned call would.
            reason = (unsupported_code(decision.unsupported[0]) if decision.unsupported
                      else "rejected_floor")
            await self._refuse(call, Status.REJECTED_FLOOR, InferenceRefused(
                reason, self._rejection(request, decision)))
        await self._reserve(call)
        # Live before it can be on the ledger, so repair never sees it open and unclaimed. If
        # the write fails it is dropped again: should the commit have landed all the same (the
        # connection broke while it was answered), this process's repair closes it.
        self._in_flight.add(inference.id)
        try:
            await self._writer.save(inference)  # write-ahead: durable before any upstream byte
        except BaseException:
            self._in_flight.discard(inference.id)
            await self._spend.release(call.reservation)
            raise
        call.durable = True
        return call

    async def _reserve(self, call: InFlight) -> None:
        day = datetime.now(UTC).date()
        request = call.request
        # The hold covers the dearest model the call may fall back to, at the most output that
        # model may produce for it (domain.protocols.limits).
        amount = max(worst_case_cost(m, call.est_input_tokens, output_ceiling(
            request.surface, request.body, request.max_output_tokens,
            self._catalog.provider_of(m).kind, m.max_output_tokens))
            for m in call.decision.fallback)
        agent = str(call.caller.agent_id)
        cap = await self._spend.cap_of(call.caller.agent_id)
        problem = "spend counters are lost"
        for attempt in range(2):
            try:
                call.reservation = await self._spend.reserve(
                    agent, day, amount, cap, call.inference.id.hex, RESERVATION_TTL_S)
                return
            except BudgetExceeded as exc:
                await self._refuse(call, Status.REJECTED_BUDGET, InferenceRefused(
                    "budget_exceeded",
                    f"daily spend cap of ${usd_text(exc.cap)} USD for agent {agent} would "
                    f"be exceeded: ${usd_text(exc.used)} used or reserved today, this request "
                    f"may cost up to ${usd_text(exc.requested)}"))
            except CountersLost:
                if attempt:
                    break
                try:
                    await self._spend.rebuild_counters(wait=RESERVE_REBUILD_WAIT_S)
                except BudgetError as exc:
                    problem = str(exc)
                    break
            except BudgetError as exc:
                problem = str(exc)
                break
        if self._fail_open:
            log.warning("spend counters unavailable, failing open: %s", problem)
            return
        log.error("spend counters unavailable, refusing (fail closed): %s", problem)
        await self._refuse(call, Status.REJECTED_BUDGET, InferenceRefused(
            "budget_unavailable",
            "spend counters are unavailable and the gateway fails closed; retry shortly"))

    async def _refuse(self, call: InFlight, status: Status, error: InferenceRefused) -> None:
        """A refusal after routing is a recorded inference (Routed + Completed), then raised."""
        with call.audit():
            call.inference.complete(status, None, None, call.elapsed_ms(), None)
        call.position = await self._writer.save(call.inference)
        self._metrics.count_request(call.request.surface, call.decision.router, status)
        note_close(str(status), None, None, 0.0)
        error.recorded = call.recorded()
        raise error

    # -- dispatch with fallback -----------------------------------------------------------

    def _attempts(self, call: InFlight) -> list[tuple[Model, Provider | None]]:
        """Who to try, in order: the fallback list for routed calls, the pinned model alone."""
        if not call.durable:
            self._metrics.count_dispatch_without_capture()
            raise AssertionError("refusing to dispatch before the Routed event is durable")
        models = call.decision.fallback if call.routed else call.decision.fallback[:1]
        return [(m, self._providers.get(m.provider)) for m in models]

    def _not_configured(self, model: Model) -> ProviderError:
        env = self._catalog.provider_of(model).api_key_env
        return ProviderError(model.provider, None, "provider_not_configured",
                             f"provider {model.provider!r} has no API key: set {env} in the "
                             "gateway's environment", retryable=True)

    async def _first_answer(
        self, call: InFlight, attempt: Callable[[Provider, Model, bool], Awaitable[T]],
    ) -> tuple[Model, T]:
        """Tries the candidates in order until one answers: the fallback list for routed calls
        (on retryable errors only), the pinned model alone otherwise. `attempt` gets whether a
        later candidate remains. Every failed attempt is a Dispatched event; when none answers,
        the call is closed as failed and FallbackExhausted names every attempt."""
        attempts = self._attempts(call)
        for number, (model, provider) in enumerate(attempts, start=1):
            asked = time.monotonic()
            try:
                if provider is None:
                    raise self._not_configured(model)
                answer = await self._within_deadline(
                    model, attempt(provider, model, call.routed and number < len(attempts)))
            except ProviderError as error:
                self._waited(call, model, asked)
                call.errors.append(error)
                with call.audit():
                    call.inference.dispatch(model.provider, model.upstream_model, None,
                                            error.as_record())
                if call.routed and error.retryable:
                    continue
                break
            self._waited(call, model, asked)
            return model, answer
        await self._close(call, None, Status.FAILED, None, None, None, streamed=False)
        raise FallbackExhausted(list(call.errors), call.recorded())

    async def _within_deadline(self, model: Model, answer: Awaitable[T]) -> T:
        """An attempt (to its answer, or a stream to its first content) ends by the deadline,
        however the upstream trickles: no call is kept in flight past the read timeout."""
        if self._attempt_deadline_s is None:
            return await answer
        try:
            return await asyncio.wait_for(answer, self._attempt_deadline_s)
        except TimeoutError:
            raise UpstreamTimeout(
                model.provider, None, "timeout",
                f"no answer within {self._attempt_deadline_s:g} s") from None

    def _ceiling(self, call: InFlight, model: Model) -> int:
        """The most output the call may have from `model`: the caller's limit, or what the
        reservation assumed when it gave none. More is an overrun."""
        request = call.request
        return output_ceiling(request.surface, request.body, request.max_output_tokens,
                              self._catalog.provider_of(model).kind, model.max_output_tokens)

    def _waited(self, call: InFlight, model: Model, since: float) -> None:
        seconds = time.monotonic() - since
        call.upstream_s += seconds
        self._metrics.observe_upstream(model.provider, seconds)

    async def _complete(self, call: InFlight) -> Completion:
        """A non-streamed call: the first attempt that answers wins."""
        wire, headers = call.request.wire, call.request.client_headers
        model, result = await self._first_answer(
            call, lambda provider, model, _: provider.complete(
                wire, model.upstream_model, max_tokens_field=model.max_tokens_field,
                client_headers=headers))
        await self._finish_success(call, model, result)
        return Completion(call.recorded(), result.message, model.slug, result.native)

    async def _finish_success(self, call: InFlight, model: Model, result: ProviderResult) -> None:
        status = Status.FALLBACK_SUCCEEDED if call.errors else Status.SUCCEEDED
        with call.audit():
            call.inference.dispatch(model.provider, model.upstream_model,
                                    result.upstream_request_id, None)
        max_tokens = self._ceiling(call, model)
        output = result.usage.get("output_tokens")
        # An upstream that answered with more than max_tokens: the answer is already here,
        # so it is debited in full, as reported, and the overrun is on the record.
        overrun = ({"max_tokens": max_tokens, "output_tokens": output, "cut": False}
                   if isinstance(output, int) and output > max_tokens else None)
        await self._close(call, model, status, result.message.get("stop_reason"), result.usage,
                          response_digest(result.message), streamed=False, overrun=overrun)

    # -- streams ----------------------------------------------------------------------------

    async def _open_stream(self, call: InFlight, encoder: EncoderFactory) -> StreamingCompletion:
        """Opens the first upstream that answers; fallback happens only before the first byte.
        The first byte is held for the first generated output only while a failure before it
        could still fall back to another candidate."""
        wire, headers = call.request.wire, call.request.client_headers
        model, upstream = await self._first_answer(
            call, lambda provider, model, can_fall_back: provider.open_stream(
                wire, model.upstream_model, until_content=can_fall_back,
                max_tokens_field=model.max_tokens_field, client_headers=headers))
        with call.audit():
            call.inference.dispatch(model.provider, model.upstream_model,
                                    upstream.upstream_request_id, None)
        # Queued now, awaited just before the first byte goes out: a client that has seen a
        # byte of this answer can count on the attempt being on the ledger, even if this
        # process dies mid-stream, and the commit overlaps the work before the first frame.
        dispatched = self._writer.submit(call.inference, keep_trying=True)
        recorded = call.recorded()
        frames = relay(call, model, upstream, dispatched,
                       encoder(call.request, recorded.public_id, model.slug),
                       self._close, self._metrics, self._record_wait_s,
                       self._ceiling(call, model))
        return StreamingCompletion(recorded, model.slug, frames)

    # -- closing and settlement -------------------------------------------------------------

    async def _close(self, call: InFlight, model: Model | None, status: Status,
                     stop_reason: str | None, usage: Usage | None, digest: str | None,
                     streamed: bool, output_chars: int = 0,
                     overrun: dict[str, Any] | None = None,
                     measured_output: int | None = None) -> None:
        """Records Completed and, when anything was consumed, Debited; then settles the hold.

        Everything is queued before the first await, so a caller cancelled while waiting here
        (a client gone mid-stream) still records and settles. The writer keeps trying while
        the store is down; the caller waits RECORD_WAIT_S at most, then is told the ledger is
        behind (RecordingIncomplete), and the call stays live (repair leaves it alone) until
        its events land."""
        known = usage if usage and any(v is not None for v in usage.values()) else None
        cost, version = charge(model, known, call.est_input_tokens, output_chars,
                               finished=status.is_ok, measured_output=measured_output)
        with call.audit():
            call.inference.complete(status, stop_reason, usage_record(known),
                                    call.elapsed_ms(), digest, overrun,
                                    served_model=None if model is None else model.slug)
            if cost is not None:
                call.inference.debit(cost, version, call.reservation.reservation_id
                                     if call.reservation else None)
        committed = self._writer.submit(call.inference, keep_trying=True)
        inference_id = call.inference.id
        committed.add_done_callback(lambda _: self._in_flight.discard(inference_id))
        note_close(str(status), model.slug if model else None, cost, call.upstream_s)
        self._spend.settle_later(call.reservation, cost or Decimal(0))
        self._metrics.count_request(call.request.surface, call.decision.router, status)
        if not streamed:
            self._metrics.observe_overhead(
                call.request.surface, max(time.monotonic() - call.started - call.upstream_s, 0))
        try:
            call.position = await asyncio.wait_for(asyncio.shield(committed),
                                                   self._record_wait_s)
        except TimeoutError:
            raise RecordingIncomplete(
                f"inference {call.recorded().public_id} ended ({status}) but the ledger store "
                "is unavailable: its Routed and attempts up to this one are recorded, and its "
                f"end ({status}{f', ${cost}' if cost is not None else ''}) is recorded as soon "
                "as the store is back", call.recorded(), pending=True) from None
        except WriteFailedError as exc:
            found = exc.found or "nothing it can read back"
            raise RecordingIncomplete(
                f"inference {call.recorded().public_id} ended ({status}) but the ledger "
                f"refused to record that: it already holds {found}; this answer's completion "
                "and cost are not on the ledger", call.recorded(), pending=False,
                found=found) from None


def _spoken(capabilities: tuple[str, ...]) -> str:
    return ", ".join(c.replace("_", " ") for c in capabilities)
