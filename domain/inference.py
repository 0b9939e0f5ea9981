"""The Inference aggregate: one gateway call, recorded as Routed, Dispatched, Streamed,
Completed and Debited events (DESIGN section 3, a contract).

Transitions are checked here, so no adapter can record a call out of order: nothing before
Routed (it is the creation event), nothing after Completed but Debited, one Completed, one
Debited. Event fields are JSON-friendly primitives and Decimal, so they serialise without
custom transcodings and canonicalise cleanly for receipts.
"""

from __future__ import annotations

from decimal import Decimal
from enum import StrEnum
from typing import Any, Final

from eventsourcing.domain import Aggregate, event

from domain.events import AuditedEvent
from domain.money import usd_str

# The two surfaces a call can come in on (the Routed event's `api`).
MESSAGES: Final = "messages"
CHAT: Final = "chat.completions"
APIS: Final = frozenset({MESSAGES, CHAT})
ROUTERS: Final = frozenset({"ainfera-inference", "direct"})
STREAM_MODES: Final = frozenset({"native"})


class Status(StrEnum):
    """How an inference ended (Completed.status). What a status means is decided here, once,
    so every read model and the gateway agree on what counts as ok, fallback or error."""

    SUCCEEDED = "succeeded"
    FALLBACK_SUCCEEDED = "fallback_succeeded"
    FAILED = "failed"
    REJECTED_FLOOR = "rejected_floor"
    REJECTED_BUDGET = "rejected_budget"
    CANCELLED = "cancelled"
    ABANDONED = "abandoned"

    @property
    def is_ok(self) -> bool:
        """An upstream answered the call (with or without a fallback)."""
        return self in (Status.SUCCEEDED, Status.FALLBACK_SUCCEEDED)

    @property
    def is_fallback(self) -> bool:
        """A success that needed a fallback: counted as ok AND as fallback, so ok + error is
        every completed call and fallback is a subset of ok."""
        return self is Status.FALLBACK_SUCCEEDED

    @property
    def is_error(self) -> bool:
        return not self.is_ok


STATUSES: Final = frozenset(s.value for s in Status)


class Inference(Aggregate):
    """One gateway call. The event classes are declared (not derived from the decorated
    methods) so the type checker and every projection's `match` see their fields; their names,
    and so the stored topics (`domain.inference:Inference.Routed`, ...), are the contract of
    DESIGN section 3 and must not change."""

    class Event(AuditedEvent):
        pass

    class Routed(Event, Aggregate.Created):
        api: str
        requested_model: str
        router: str
        alias_hit: str | None
        candidates: list[dict[str, Any]]
        chosen_model: str | None
        policy: dict[str, Any]
        ruleset_hash: str
        stream: bool
        tools: int
        request_digest: str
        # The gateway process that owns the call (its heartbeat tells repair whether the call
        # can still be live). Added after the first release: events stored without it load
        # with None, and their stored bytes, hashes and receipts are unchanged.
        instance_id: str | None = None
        # Added after the first stores were written: a Routed stored before it has no such key
        # (its policy.routing_preference held the request then) and reads as None. Old events
        # are not upcast, so their ledger objects and leaf hashes stay as they were.
        requested_preference: str | None = None

    class Dispatched(Event):
        attempt: int
        provider: str
        backend_model: str
        upstream_request_id: str | None
        error: dict[str, Any] | None

    class Streamed(Event):
        mode: str
        ttft_ms: int | None
        chunks: int
        bytes: int

    class Completed(Event):
        status: str
        stop_reason: str | None
        usage: dict[str, int | None] | None
        latency_ms: int | None
        response_digest: str | None
        # Set when the upstream produced more output than the request's max_tokens allowed:
        # {"max_tokens", "output_tokens" (what was counted), "cut" (whether the gateway stopped
        # the stream there)}. Absent from events recorded before it existed (None).
        overrun: dict[str, Any] | None = None
        # The catalog slug whose output the call delivered (the chosen model, or the fallback
        # that answered instead); None when no upstream served it. Added later: a Completed
        # stored before it has no such key and reads as None (it is not upcast, so old leaf
        # hashes stay as they were).
        served_model: str | None = None

    class Debited(Event):
        cost_usd: str
        price_version: str
        reservation_id: str | None

    @event(Routed)
    def __init__(
        self,
        api: str,
        requested_model: str,
        router: str,
        alias_hit: str | None,
        candidates: list[dict[str, Any]],
        chosen_model: str | None,
        policy: dict[str, Any],
        ruleset_hash: str,
        stream: bool,
        tools: int,
        request_digest: str,
        instance_id: str | None = None,
        requested_preference: str | None = None,
    ) -> None:
        check_one_of("api", api, APIS)
        check_one_of("router", router, ROUTERS)
        self.api = api
        self.requested_model = requested_model
        self.router = router
        self.alias_hit = alias_hit
        self.candidates = candidates
        self.chosen_model = chosen_model
        self.policy = policy
        self.ruleset_hash = ruleset_hash
        self.stream = stream
        self.tools = tools
        self.request_digest = request_digest
        self.instance_id = instance_id
        self.requested_preference = requested_preference
        self.attempts = 0
        self.streamed = False
        self.status: Status | None = None
        self.served_model: str | None = None
        self.cost_usd: Decimal | None = None

    @property
    def is_completed(self) -> bool:
        return self.status is not None

    @property
    def is_debited(self) -> bool:
        return self.cost_usd is not None

    def dispatch(
        self,
        provider: str,
        backend_model: str,
        upstream_request_id: str | None,
        error: dict[str, Any] | None,
    ) -> None:
        """Records one attempt at an upstream; `error` is None when the attempt got through."""
        self.check_open("dispatch")
        self._dispatched(self.attempts + 1, provider, backend_model, upstream_request_id, error)

    @event(Dispatched)
    def _dispatched(
        self,
        attempt: int,
        provider: str,
        backend_model: str,
        upstream_request_id: str | None,
        error: dict[str, Any] | None,
    ) -> None:
        self.attempts = attempt

    def record_stream(self, ttft_ms: int | None, chunks: int, bytes: int) -> None:
        self.check_open("record a stream for")
        if self.streamed:
            raise InvalidTransitionError(f"inference {self.id} already has a Streamed event")
        self._streamed("native", ttft_ms, chunks, bytes)

    @event(Streamed)
    def _streamed(self, mode: str, ttft_ms: int | None, chunks: int, bytes: int) -> None:
        self.streamed = True

    def complete(
        self,
        status: Status | str,
        stop_reason: str | None,
        usage: dict[str, int | None] | None,
        latency_ms: int | None,
        response_digest: str | None,
        overrun: dict[str, Any] | None = None,
        served_model: str | None = None,
    ) -> None:
        """Closes the inference. `usage` None means the upstream never reported usage, which is
        recorded as unknown rather than as zero. `served_model` is the slug that delivered the
        answer (None when no upstream did); it differs from the chosen model after a fallback."""
        self.check_open("complete")
        check_one_of("status", str(status), STATUSES)
        self._completed(str(status), stop_reason, usage, latency_ms, response_digest, overrun,
                        served_model)

    @event(Completed)
    def _completed(
        self,
        status: str,
        stop_reason: str | None,
        usage: dict[str, int | None] | None,
        latency_ms: int | None,
        response_digest: str | None,
        overrun: dict[str, Any] | None = None,
        served_model: str | None = None,
    ) -> None:
        self.status = Status(status)
        self.usage = usage
        self.latency_ms = latency_ms
        self.served_model = served_model

    def debit(self, cost_usd: Decimal, price_version: str, reservation_id: str | None) -> None:
        if not self.is_completed:
            raise InvalidTransitionError(f"inference {self.id} cannot be debited before Completed")
        if self.is_debited:
            raise InvalidTransitionError(f"inference {self.id} is already debited")
        if not cost_usd.is_finite() or cost_usd < 0:
            raise InvalidTransitionError(f"cost must be a non-negative amount, not {cost_usd}")
        self._debited(usd_str(cost_usd), price_version, reservation_id)

    @event(Debited)
    def _debited(self, cost_usd: str, price_version: str, reservation_id: str | None) -> None:
        self.cost_usd = Decimal(cost_usd)

    def check_open(self, action: str) -> None:
        if self.is_completed:
            raise InvalidTransitionError(
                f"cannot {action} inference {self.id}: it is already {self.status}"
            )


def check_one_of(name: str, value: str, allowed: frozenset[str]) -> None:
    if value not in allowed:
        raise InvalidTransitionError(f"{name} must be one of {sorted(allowed)}, not {value!r}")



class InferenceError(Exception):
    """Base of the inference rules' errors."""


class InvalidTransitionError(InferenceError):
    """A command that would record the inference's events out of order or with bad values."""
