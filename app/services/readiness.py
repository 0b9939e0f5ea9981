"""Readiness: whether this gateway can serve a call right now, and if not, which part cannot.

`/readyz` answers from here within a second whatever is down: the checks run together on
their own two threads (never queued behind request work on the shared executor), each is
given READY_BUDGET_S, and a check that has not answered by then counts as failing ("no answer
within 0.7 s"). Concurrent callers share one probe, and a probe younger than FRESH_S is
reused, so a load balancer polling hard costs one probe per FRESH_S.

Ready means a write and a read would succeed now: the event store answers and the writer
thread is alive, the read models' database answers, the projections are neither failing nor
stalled, the checkpointer is not refusing, failing or silent while leaves wait unsigned, and
the spend counters answer (unless the gateway is configured to fail open). The projections and
the checkpointer may run in another process (`ainfera project`, the gateway's child): their
progress is read from the database, so a stall is seen wherever they run; an error is seen
directly when they run here. Liveness (`/healthz`) is none of this.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TypeVar

from adapters.budget import BudgetCounter
from adapters.store import EventStore
from adapters.writer import GroupCommitWriter
from app.services.read_side import ReadSide
from projections.ledger_tables import LedgerTables
from projections.view import Session

T = TypeVar("T")

log = logging.getLogger("ainfera.readiness")

READY_BUDGET_S = 0.7
FRESH_S = 0.25
# Projections that have not moved for this long while the ledger is ahead of them are stalled.
STALL_AFTER_S = 5.0
OK = "ok"


@dataclass
class Progress:
    """The slowest projection's position as probes saw it, to tell slow from stalled."""

    position: int = -1
    since: float = field(default_factory=time.monotonic)

    def observe(self, position: int, now: float) -> float:
        """Records a position; returns how long it has not moved."""
        if position != self.position:
            self.position, self.since = position, now
        return now - self.since


class Readiness:
    def __init__(self, *, store: EventStore, writer: GroupCommitWriter, read_side: ReadSide,
                 checkpointer_error: Callable[[], str | None], budget: BudgetCounter,
                 counters_required: bool,
                 rebuild_counters: Callable[[], Awaitable[None]]) -> None:
        self._store = store
        self._writer = writer
        self._read_side = read_side
        self._checkpointer_error = checkpointer_error
        self._budget = budget
        self._counters_required = counters_required
        self._rebuild_counters = rebuild_counters
        self._threads = ThreadPoolExecutor(2, thread_name_prefix="ainfera-readiness")
        self._progress = Progress()
        self._signed = Progress()
        self._latest: tuple[float, dict[str, str]] | None = None
        self._inflight: asyncio.Future[dict[str, str]] | None = None
        self._rebuilding: asyncio.Task[None] | None = None

    async def checks(self) -> dict[str, str]:
        """Every component: "ok", or what is wrong with it."""
        now = time.monotonic()
        if self._latest is not None and now - self._latest[0] < FRESH_S:
            return self._latest[1]
        if self._inflight is None or self._inflight.done():
            self._inflight = asyncio.ensure_future(self._probe())
        # Shielded: one caller going away must not cancel the probe the others wait for.
        return await asyncio.shield(self._inflight)

    def close(self) -> None:
        if self._rebuilding is not None:
            self._rebuilding.cancel()
        self._threads.shutdown(wait=False, cancel_futures=True)

    async def _probe(self) -> dict[str, str]:
        names = ("store", "projector", "checkpointer", "counters")
        results = await asyncio.gather(
            self._bounded(self._check_store()), self._bounded(self._check_projector()),
            self._bounded(self._check_checkpointer()), self._bounded(self._check_counters()))
        checks = dict(zip(names, results, strict=True))
        self._latest = (time.monotonic(), checks)
        return checks

    async def _bounded(self, check: Awaitable[str]) -> str:
        try:
            return await asyncio.wait_for(check, READY_BUDGET_S)
        except TimeoutError:
            return f"no answer within {READY_BUDGET_S} s"
        except Exception as exc:
            text = str(exc).strip() or type(exc).__name__
            return f"unavailable: {text.splitlines()[0]}"

    async def _in_thread(self, work: Callable[[], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._threads, work)

    async def _check_store(self) -> str:
        if not self._writer.alive:
            return "the writer thread is not running"
        outage = self._store.breaker.outage
        if outage is not None:
            return f"unreachable for {time.monotonic() - outage[1]:.1f} s: {outage[0]}"
        await self._in_thread(self._store.ping)
        held = self._writer.backlog_size
        if held:
            return f"{held} write(s) of calls in flight held until the store takes them"
        return OK

    async def _check_projector(self) -> str:
        read_side = self._read_side
        positions = await self._in_thread(read_side.positions)
        latest = await self._in_thread(self._store.max_notification_id)
        slowest = min(positions.values(), default=latest)
        still = self._progress.observe(slowest, time.monotonic())
        projector = read_side.projector
        if projector is not None:  # this process runs it: its own state says more
            state = projector.state()
            if not state.running:
                return "the projector is not running"
            if state.last_error is not None:
                return f"failing: {state.last_error}"
        if latest > slowest and still >= STALL_AFTER_S:
            return (f"stalled: {latest - slowest} events behind the ledger, no progress for "
                    f"{still:.0f} s")
        return OK

    async def _check_checkpointer(self) -> str:
        """This process's checkpointer's own error when it runs one; wherever it runs, leaves
        that stay unsigned (the signed size not moving while the tree is larger)."""
        error = self._checkpointer_error()
        if error is not None:
            return f"refusing to sign: {error}"
        size, signed = await self._in_thread(lambda: self._read_side.read_now(_tree_and_signed))
        still = self._signed.observe(signed, time.monotonic())
        if size > signed and still >= STALL_AFTER_S:
            return (f"not signing: {size - signed} leaves unsigned, no checkpoint for "
                    f"{still:.0f} s")
        return OK

    async def _check_counters(self) -> str:
        if await self._budget.healthy():
            return OK
        # Lost counters are rebuilt by the next call that reserves; with no traffic (a load
        # balancer waiting for this answer) nobody would, so readiness starts the rebuild.
        if self._rebuilding is None or self._rebuilding.done():
            self._rebuilding = asyncio.ensure_future(self._rebuild_quietly())
        if not self._counters_required:
            return OK + " (counters unavailable, serving because the gateway fails open)"
        return "spend counters are unavailable or being rebuilt from the ledger"

    async def _rebuild_quietly(self) -> None:
        try:
            await self._rebuild_counters()
        except Exception as exc:  # the next probe tries again; the cause is in this log line
            log.warning("spend counters could not be rebuilt yet: %s", exc)


def _tree_and_signed(session: Session) -> tuple[int, int]:
    tables = LedgerTables(session)
    size, _ = tables.head()
    latest = tables.latest_checkpoint()
    return size, 0 if latest is None else latest.size


def is_ready(checks: dict[str, str]) -> bool:
    return all(value.startswith(OK) for value in checks.values())
