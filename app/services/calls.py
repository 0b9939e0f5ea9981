"""What goes in and out of the write path (app/services/inference.py): the request it takes,
the outcomes it returns, and the errors it raises, none of which speaks HTTP. Each error says
what the ledger holds of the call (`recorded`), so the edge can point the caller at it and an
idempotent retry knows whether anything was served.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any, Protocol

from adapters.budget import Reservation
from adapters.providers.errors import ProviderError
from app.services.tenancy import Caller
from domain.context import audit_context
from domain.ids import public_inference_id
from domain.inference import Inference
from domain.protocols.canonical import JSON
from domain.protocols.fates import Refusal
from domain.protocols.surfaces import WireRequest
from domain.routing import RoutingDecision


@dataclass(frozen=True, slots=True)
class InferenceRequest:
    """One call as the write path takes it, whatever surface it came in on."""

    surface: str  # the Routed event's `api`: "messages" | "chat.completions"
    requested_model: str
    body: JSON  # as the client sent it, routing_hint removed, model still the client's
    stream: bool
    include_usage: bool
    routing_hint: JSON
    digest: str  # sha256 of the canonical JSON of the body as the client sent it
    # Client headers a backend of the same vendor may need (e.g. `anthropic-beta`).
    client_headers: dict[str, str] = field(default_factory=dict)
    max_output_tokens: int | None = None  # the caller's limit; Chat Completions may send none
    text_size: int = 0  # characters of text the model reads: what input estimates start from
    tool_count: int = 0
    needs: frozenset[str] = frozenset()  # capabilities the answer needs (fates.capability_needs)
    # Per provider kind, the fields a backend of that kind would have to refuse.
    refusals: Mapping[str, tuple[Refusal, ...]] = field(default_factory=dict)

    @property
    def wire(self) -> WireRequest:
        """What a provider is handed: the client's body, in its own protocol."""
        return WireRequest(self.surface, self.body)


@dataclass(frozen=True, slots=True)
class Recorded:
    """What the ledger holds of a call: enough for the caller to find it again."""

    public_id: str
    agent_id: str
    router: str
    position: int | None = None  # the ledger position of its last committed event, when known


@dataclass(frozen=True, slots=True)
class Completion:
    recorded: Recorded
    message: JSON  # the canonical (Anthropic-shaped) answer
    served_model: str  # the catalog slug that answered
    # The upstream's own body when it speaks the caller's protocol: the answer to give, every
    # field kept.
    native: JSON | None = None


@dataclass(frozen=True, slots=True)
class StreamingCompletion:
    recorded: Recorded
    served_model: str
    frames: AsyncIterator[bytes]  # already encoded for the caller's protocol


class FrameEncoder(Protocol):
    """Encodes canonical stream events into the caller's wire frames (the HTTP edge's)."""

    def encode(self, event: JSON) -> bytes: ...

    def finish(self) -> bytes: ...

    def error(self, error_type: str, message: str) -> bytes: ...


# (request, public id, served model slug) -> the encoder for that stream.
EncoderFactory = Callable[[InferenceRequest, str, str], FrameEncoder]


@dataclass
class InFlight:
    """One inference in flight, as the write path and its relay share it: the aggregate, its
    decision and what settles it."""

    request: InferenceRequest
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
    position: int | None = None

    @property
    def routed(self) -> bool:
        return self.decision.router != "direct"

    def audit(self) -> AbstractContextManager[Any]:
        return audit_context(str(self.caller.tenant_id), str(self.caller.agent_id),
                             self.request_id)

    def elapsed_ms(self) -> int:
        return int((time.monotonic() - self.started) * 1000)

    def recorded(self) -> Recorded:
        return Recorded(public_inference_id(self.inference.id, self.request.surface),
                        str(self.caller.agent_id), self.decision.router, self.position)


class InferenceError(Exception):
    """Base of the write path's errors. `recorded` is what the ledger holds of the call (None:
    nothing was recorded, so a retry cannot have been served twice)."""

    recorded: Recorded | None = None

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ModelNotFound(InferenceError):
    """The requested model is neither the router nor a catalog slug; nothing was recorded."""

    def __init__(self, model: str) -> None:
        super().__init__(f"model {model!r} not found: use 'ainfera-inference' or a model from "
                         "GET /v1/models")
        self.model = model


class InvalidRequest(InferenceError):
    """A request field the router cannot take (a bad routing hint); nothing was recorded."""

    def __init__(self, message: str, *, param: str | None = None) -> None:
        super().__init__(message)
        self.param = param


class CannotServe(InferenceError):
    """A pinned model cannot serve the request, as the request and the catalog alone show, so
    nothing was recorded. `reason`: `not_translatable` (its protocol would have to refuse a
    field, `param`) or `<capability>_not_supported_by_backend` (it lacks what the answer
    needs: `tools_not_supported_by_backend`, ...; `domain.routing.unsupported_code`)."""

    def __init__(self, reason: str, message: str, *, param: str | None = None) -> None:
        super().__init__(message)
        self.reason = reason
        self.param = param


class InferenceRefused(InferenceError):
    """Routed, then refused before anything went upstream, and recorded as such.

    `reason`: `rejected_floor` (no model clears the quality floor),
    `<capability>_not_supported_by_backend` (no model has what the call needs; recorded as
    rejected_floor too), `budget_exceeded` (the agent's daily cap), `budget_unavailable` (the
    counters are down and the gateway fails closed)."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class FallbackExhausted(InferenceError):
    """Every candidate tried failed (one, for a pinned model); the call is recorded as failed.
    `attempts` holds each attempt's error, in order."""

    def __init__(self, attempts: list[ProviderError], recorded: Recorded) -> None:
        tried = "; ".join(f"{e.provider}: {e.error_type}" + (f" ({e.status})" if e.status else "")
                          for e in attempts)
        super().__init__(f"upstream failed after {len(attempts)} attempt(s): {tried}: "
                         f"{attempts[-1].message}")
        self.attempts = attempts
        self.tried = tried
        self.recorded = recorded


class RecordingIncomplete(InferenceError):
    """The call reached an end but the ledger could not record it as such. `pending`: its
    closing events are held by the writer and recorded as soon as the store is back (the
    store is down now); otherwise the store refused them and `found` says what it holds of
    the call instead (it was closed by someone else, which repair never does to a live call).
    Either way the caller is told exactly what the ledger holds."""

    def __init__(self, message: str, recorded: Recorded, *, pending: bool,
                 found: str | None = None) -> None:
        super().__init__(message)
        self.recorded = recorded
        self.pending = pending
        self.found = found
