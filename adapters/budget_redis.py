"""Budget counters in Redis, shared by every gateway process: one Lua script per operation.

Each operation is a single script, so the check-and-hold of `reserve` is atomic across all
processes. Expiry uses the Redis server's `TIME` (allowed in scripts since Redis 5 replicates
effects, the only mode of Redis 7), so clock skew between gateway hosts cannot stretch or shorten
a hold.

Keys, all under the configured prefix and expiring a few days after their UTC day:

    {prefix}budget:epoch                    set by rebuild(), never expires; its absence means
                                            the counters were lost (flush, restart without
                                            persistence) or never built
    {prefix}budget:{day}:settled:{agent}    integer nano-dollars (1e-9 USD) settled that day
    {prefix}budget:{day}:res:{agent}        sorted set: reservation id scored by expiry (ms)
    {prefix}budget:{day}:amt:{agent}        hash: reservation id -> nano-dollars held
    {prefix}budget:{day}:ended:{agent}      set: reservation ids settled or released
    {prefix}budget:{day}:agents             set: agents with counters that day (for rebuild)

Needs one Redis primary (Sentinel is fine) with `maxmemory-policy noeviction`: an evicted
counter would silently undercount. `rebuild` reaches every agent of a day in one script by
building key names inside Lua, which Redis Cluster would refuse.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.commands.core import AsyncScript
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError, RedisError

from adapters.budget import (
    BudgetExceeded,
    BudgetUnavailable,
    CountersLost,
    Reservation,
    ReservationEnded,
    Usage,
    check_reservation_args,
    counters_expire_at,
    nano_to_usd,
    usd_to_nano,
)

log = logging.getLogger("ainfera.budget")

# Reserves per pipeline: bounds one batch's reply buffer and how long Redis runs it at once.
RESERVE_BATCH_MAX = 256

_LUA_COMMON = """
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function prune(res, amt, now)
  local expired = redis.call('ZRANGEBYSCORE', res, '-inf', now)
  -- unpack() of a huge list would overflow Lua's C stack, so delete in chunks.
  for i = 1, #expired, 500 do
    redis.call('HDEL', amt, unpack(expired, i, math.min(i + 499, #expired)))
  end
  if #expired > 0 then redis.call('ZREMRANGEBYSCORE', res, '-inf', now) end
end
local function sum(values)
  local total = 0
  for _, v in ipairs(values) do if v then total = total + tonumber(v) end end
  return total
end
"""

# KEYS: epoch, settled, res, amt, ended, agents
# ARGV: reservation id, nano-dollars, cap in nano-dollars or -1 for none, ttl ms, expireat s, agent
# Returns {status, settled, reserved, expiry ms, held}: 1 held, 0 over cap, 2 already held,
# -1 counters lost, -2 id already ended.
_RESERVE = (
    _LUA_COMMON
    + """
if redis.call('EXISTS', KEYS[1]) == 0 then return {-1, 0, 0, 0, 0} end
local id, amount, cap = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local now = now_ms()
prune(KEYS[3], KEYS[4], now)
if redis.call('SISMEMBER', KEYS[5], id) == 1 then return {-2, 0, 0, 0, 0} end
local settled = tonumber(redis.call('GET', KEYS[2]) or '0')
local reserved = sum(redis.call('HVALS', KEYS[4]))
local held_until = redis.call('ZSCORE', KEYS[3], id)
if held_until then
  return {2, settled, reserved, tonumber(held_until), tonumber(redis.call('HGET', KEYS[4], id))}
end
if cap >= 0 and settled + reserved + amount > cap then return {0, settled, reserved, 0, 0} end
local expiry = now + tonumber(ARGV[4])
redis.call('ZADD', KEYS[3], expiry, id)
redis.call('HSET', KEYS[4], id, ARGV[2])
redis.call('SADD', KEYS[6], ARGV[6])
for i = 3, 6 do redis.call('EXPIREAT', KEYS[i], ARGV[5]) end
return {1, settled, reserved, expiry, amount}
"""
)

# KEYS: settled, res, amt, ended, agents.  ARGV: reservation id, nano-dollars, expireat s, agent
# Deliberately does not check the epoch: a call that ran must be counted even across a loss.
_SETTLE = """
if redis.call('SISMEMBER', KEYS[4], ARGV[1]) == 1 then return 0 end
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('HDEL', KEYS[3], ARGV[1])
redis.call('INCRBY', KEYS[1], ARGV[2])
redis.call('SADD', KEYS[4], ARGV[1])
redis.call('SADD', KEYS[5], ARGV[4])
for i = 1, 5 do redis.call('EXPIREAT', KEYS[i], ARGV[3]) end
return 1
"""

# KEYS: res, amt, ended.  ARGV: reservation id, expireat s
_RELEASE = """
if redis.call('SISMEMBER', KEYS[3], ARGV[1]) == 1 then return 0 end
local was_live = redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[2], ARGV[1])
redis.call('SADD', KEYS[3], ARGV[1])
redis.call('EXPIREAT', KEYS[3], ARGV[2])
return was_live
"""

# KEYS: settled, res, amt.  Read-only: live holds are those expiring after now.
_USAGE = (
    _LUA_COMMON
    + """
local settled = tonumber(redis.call('GET', KEYS[1]) or '0')
local live = redis.call('ZRANGEBYSCORE', KEYS[2], '(' .. now_ms(), '+inf')
local reserved = 0
for i = 1, #live, 500 do
  reserved = reserved + sum(redis.call('HMGET', KEYS[3], unpack(live, i, math.min(i + 499, #live))))
end
return {settled, reserved}
"""
)

# KEYS: epoch, agents.  ARGV: day key base, expireat s, then agent, nano-dollars pairs.
# Returns 1 if the counters had been lost (so the ledger's totals were added, not set).
_REBUILD = (
    _LUA_COMMON
    + """
local lost = redis.call('EXISTS', KEYS[1]) == 0
local base, expireat = ARGV[1], ARGV[2]
local given = {}
for i = 3, #ARGV, 2 do given[ARGV[i]] = ARGV[i + 1] end
if not lost then
  for _, agent in ipairs(redis.call('SMEMBERS', KEYS[2])) do
    if not given[agent] then redis.call('DEL', base .. 'settled:' .. agent) end
  end
end
for agent, nano in pairs(given) do
  local key = base .. 'settled:' .. agent
  if lost then redis.call('INCRBY', key, nano) else redis.call('SET', key, nano) end
  redis.call('EXPIREAT', key, expireat)
  redis.call('SADD', KEYS[2], agent)
end
redis.call('EXPIREAT', KEYS[2], expireat)
redis.call('SET', KEYS[1], now_ms())
if lost then return 1 end
return 0
"""
)


@dataclass(slots=True)
class _QueuedReserve:
    """One caller's reserve waiting for the next batch; `reply` is the script's raw answer."""

    agent_id: str
    day: date
    reservation_id: str
    keys: list[str]
    args: list[str | int]
    reply: asyncio.Future[Any]
    queued_at: float


@contextmanager
def _redis_errors(doing: str) -> Iterator[None]:
    """Turns any redis-py failure into BudgetUnavailable, so callers fail closed on one type."""
    try:
        yield
    except RedisError as exc:
        raise BudgetUnavailable(f"Redis budget counters could not {doing}: {exc}") from exc


class RedisBudgetCounter:
    """The budget counter port over Redis; safe across any number of gateway processes."""

    def __init__(self, client: Redis, *, prefix: str, owns_client: bool = False) -> None:
        self._client = client
        self._owns_client = owns_client
        self._root = f"{prefix}budget:"
        self._epoch = f"{self._root}epoch"
        self._reserve = client.register_script(_RESERVE)
        self._settle = client.register_script(_SETTLE)
        self._release = client.register_script(_RELEASE)
        self._usage = client.register_script(_USAGE)
        self._rebuild = client.register_script(_REBUILD)
        # Reserves go out together when others are already waiting (see reserve).
        self._queued: list[_QueuedReserve] = []
        self._flusher: asyncio.Task[None] | None = None
        self._direct_in_flight = 0
        # The pool's reply timeout also bounds a queued reserve's whole wait, so queueing
        # behind a batch cannot make a caller wait longer than one command could.
        self._wait_s: float | None = client.connection_pool.connection_kwargs.get(
            "socket_timeout")
        self._releasing: set[asyncio.Task[None]] = set()

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        prefix: str = "ainfera:",
        max_connections: int = 32,
        timeout_s: float = 1.0,
    ) -> RedisBudgetCounter:
        """A counter with its own bounded pool; every wait (connect, reply, free connection)
        is bounded by `timeout_s` so a sick Redis refuses calls quickly instead of hanging them.
        """
        pool = BlockingConnectionPool.from_url(
            url,
            max_connections=max_connections,
            timeout=timeout_s,
            socket_connect_timeout=timeout_s,
            socket_timeout=timeout_s,
            # One immediate retry on a dropped connection (a stale pooled socket): reserve,
            # settle and release are idempotent for the same arguments, so a retry cannot count
            # twice (a retried rebuild after a loss replaces instead of adding, see rebuild).
            # Timeouts are not retried: they would double the wait of a call about to be refused.
            retry=Retry(NoBackoff(), 1, supported_errors=(RedisConnectionError,)),
        )
        return cls(Redis(connection_pool=pool), prefix=prefix, owns_client=True)

    def _day_base(self, day: date) -> str:
        return f"{self._root}{day.isoformat()}:"

    def _keys(self, day: date, agent_id: str, *kinds: str) -> list[str]:
        base = self._day_base(day)
        return [
            f"{base}agents" if kind == "agents" else f"{base}{kind}:{agent_id}" for kind in kinds
        ]

    async def reserve(
        self,
        agent_id: str,
        day: date,
        amount: Decimal,
        cap: Decimal | None,
        reservation_id: str,
        ttl_s: int,
    ) -> Reservation:
        """Auto-pipelined: a reserve made while no other is in flight goes out at once as one
        EVALSHA (a quiet loop pays what it always did); one made while others are waiting is
        queued, and one flusher sends each queue as one pipeline, each reserve its own
        script, so each stays atomic and each caller gets only its own answer."""
        check_reservation_args(agent_id, reservation_id, ttl_s)
        nano = usd_to_nano(amount)
        cap_nano = -1 if cap is None else usd_to_nano(cap, round_up=False)
        keys = [self._epoch, *self._keys(day, agent_id, "settled", "res", "amt", "ended", "agents")]
        args: list[str | int] = [
            reservation_id,
            nano,
            cap_nano,
            ttl_s * 1000,
            _expireat(day),
            agent_id,
        ]
        if self._flusher is None and not self._direct_in_flight:
            self._direct_in_flight += 1
            try:
                with _redis_errors("reserve"):
                    reply = await self._reserve(keys=keys, args=args)
            finally:
                self._direct_in_flight -= 1
        else:
            loop = asyncio.get_running_loop()
            queued = _QueuedReserve(agent_id, day, reservation_id, keys, args,
                                    loop.create_future(), loop.time())
            self._queued.append(queued)
            if self._flusher is None:
                self._flusher = loop.create_task(self._flush())
            # Cancelled here, the caller cancels its future: the flusher then drops it unsent,
            # or releases the hold it placed (see _answer).
            reply = await queued.reply
        return self._reservation(reply, agent_id, day, cap, reservation_id, nano)

    def _reservation(self, reply: Any, agent_id: str, day: date, cap: Decimal | None,
                     reservation_id: str, nano: int) -> Reservation:
        status, settled, reserved, expiry_ms, held = _ints(reply)
        if status == -1:
            raise CountersLost(
                f"Redis budget counters are gone ({self._epoch} is missing): "
                "rebuild() them from the ledger"
            )
        if status == -2:
            raise ReservationEnded(reservation_id)
        if status == 0:
            assert cap is not None  # the script refuses only against a cap
            raise BudgetExceeded(agent_id, cap, nano_to_usd(settled + reserved), nano_to_usd(nano))
        return Reservation(
            agent_id=agent_id,
            day=day,
            reservation_id=reservation_id,
            amount=nano_to_usd(held),
            expires_at=datetime.fromtimestamp(expiry_ms // 1000, UTC)
            + timedelta(milliseconds=expiry_ms % 1000),
        )

    async def _flush(self) -> None:
        # Started by the first queued reserve, it runs on the next loop turn: by then every
        # reserve of this turn is queued. Reserves queued while a batch is in flight go in the
        # next one.
        try:
            while self._queued:
                batch = [q for q in self._queued[:RESERVE_BATCH_MAX] if not q.reply.done()]
                del self._queued[:RESERVE_BATCH_MAX]
                if batch:
                    await self._send_reserves(batch)
        finally:
            self._flusher = None
            # Only if the flusher itself was cancelled (loop shutdown) is anyone left waiting.
            for queued in self._queued:
                _fail(queued, "reserve", BudgetUnavailable(
                    "Redis budget counters could not reserve: the batch was abandoned"))
            self._queued.clear()

    async def _send_reserves(self, batch: list[_QueuedReserve]) -> None:
        """Sends one batch; every caller in it gets an answer, whatever happens."""
        deadline = None if self._wait_s is None else batch[0].queued_at + self._wait_s
        try:
            if deadline is not None and deadline <= asyncio.get_running_loop().time():
                raise TimeoutError
            async with asyncio.timeout_at(deadline):
                outcomes = await self._run_scripts(
                    self._reserve, [(q.keys, q.args) for q in batch], "reserve")
        except TimeoutError:
            for queued in batch:
                _fail(queued, "reserve", BudgetUnavailable(
                    f"Redis budget counters could not reserve within {self._wait_s} s"))
            return
        except BaseException as exc:
            # A bug, or the flusher cancelled: nobody in the batch may be left waiting.
            for queued in batch:
                _fail(queued, "reserve", BudgetUnavailable(
                    f"Redis budget counters could not reserve: {exc!r}"))
            raise
        for queued, outcome in zip(batch, outcomes, strict=True):
            if isinstance(outcome, BudgetUnavailable):
                _fail(queued, "reserve", outcome)
            else:
                self._answer(queued, outcome)

    async def _run_scripts(self, script: AsyncScript,
                           calls: Sequence[tuple[list[str], list[str | int]]],
                           doing: str) -> list[Any]:
        """Runs `script` once per (keys, args), in one round trip, each call atomic on its own
        (not across them): in order, each call's reply, or the BudgetUnavailable it failed
        with, so one failing call costs only its own answer.

        One call goes as the plain script call (a pipeline object costs more than the one
        command it would carry; the script object reloads itself on NOSCRIPT). More go as one
        pipeline of EVALSHA, with a SCRIPT LOAD only for the calls refused with NOSCRIPT (the
        server's script cache empties when it restarts), then once more: redis-py's own
        Script handling in a pipeline would instead ask SCRIPT EXISTS before every pipeline,
        a second round trip per batch to guard against a rare restart."""
        if len(calls) == 1:
            keys, args = calls[0]
            try:
                with _redis_errors(doing):
                    return [await script(keys=keys, args=args)]
            except BudgetUnavailable as exc:
                return [exc]
        outcomes: list[Any] = [None] * len(calls)
        pending = list(range(len(calls)))
        for attempt in range(2):
            pipe = self._client.pipeline(transaction=False)
            for i in pending:
                keys, args = calls[i]
                pipe.evalsha(script.sha, len(keys), *keys, *args)
            try:
                with _redis_errors(doing):
                    replies = await pipe.execute(raise_on_error=False)
            except BudgetUnavailable as exc:
                for i in pending:
                    outcomes[i] = exc
                return outcomes
            unknown_script = []
            for i, reply in zip(pending, replies, strict=True):
                if isinstance(reply, NoScriptError) and attempt == 0:
                    unknown_script.append(i)
                elif isinstance(reply, RedisError):
                    failed = BudgetUnavailable(f"Redis budget counters could not {doing}: {reply}")
                    failed.__cause__ = reply
                    outcomes[i] = failed
                else:
                    outcomes[i] = reply
            pending = unknown_script
            if not pending:
                break
            try:
                with _redis_errors(f"load the {doing} script"):
                    await self._client.script_load(script.script)
            except BudgetUnavailable as exc:
                for i in pending:
                    outcomes[i] = exc
                break
        return outcomes

    def _answer(self, queued: _QueuedReserve, reply: Any) -> None:
        if not queued.reply.done():
            queued.reply.set_result(reply)
            return
        # The caller was cancelled while its reserve was in flight. A hold this very script
        # placed (status 1) has nobody to settle it: released now rather than counted against
        # the cap until its TTL. An existing hold (status 2) is left alone: whoever reserved
        # that id first may still settle it.
        if isinstance(reply, Sequence) and reply and reply[0] == 1:
            abandoned = Reservation(queued.agent_id, queued.day, queued.reservation_id,
                                    Decimal(0), datetime.now(UTC))
            task = asyncio.get_running_loop().create_task(self._release_abandoned(abandoned))
            self._releasing.add(task)
            task.add_done_callback(self._releasing.discard)

    async def _release_abandoned(self, reservation: Reservation) -> None:
        try:
            await self.release(reservation)
        except BudgetUnavailable as exc:
            log.warning("could not release reservation %s of a cancelled caller (it expires "
                        "on its own): %s", reservation.reservation_id, exc)

    def _settle_argv(
        self, reservation: Reservation, actual: Decimal
    ) -> tuple[list[str], list[str | int]]:
        """The settle script's KEYS and ARGV."""
        nano = usd_to_nano(actual)
        r = reservation
        keys = self._keys(r.day, r.agent_id, "settled", "res", "amt", "ended", "agents")
        return keys, [r.reservation_id, nano, _expireat(r.day), r.agent_id]

    async def settle(self, reservation: Reservation, actual: Decimal) -> None:
        keys, args = self._settle_argv(reservation, actual)
        with _redis_errors("settle"):
            await self._settle(keys=keys, args=args)

    async def settle_many(
        self, settles: Sequence[tuple[Reservation, Decimal]]
    ) -> list[Exception | None]:
        """Every settle in one round trip (`_run_scripts`), each its own script call: atomic
        per reservation, not across them, so one failing settle costs only its own."""
        outcomes: list[Exception | None] = [None] * len(settles)
        ready: list[int] = []
        calls: list[tuple[list[str], list[str | int]]] = []
        for i, (reservation, actual) in enumerate(settles):
            try:
                calls.append(self._settle_argv(reservation, actual))
            except Exception as exc:  # an amount that cannot be counted: that settle only
                outcomes[i] = exc
            else:
                ready.append(i)
        if calls:
            replies = await self._run_scripts(self._settle, calls, "settle")
            for i, reply in zip(ready, replies, strict=True):
                if isinstance(reply, BudgetUnavailable):
                    outcomes[i] = reply
        return outcomes

    async def release(self, reservation: Reservation) -> None:
        r = reservation
        keys = self._keys(r.day, r.agent_id, "res", "amt", "ended")
        with _redis_errors("release"):
            await self._release(keys=keys, args=[r.reservation_id, _expireat(r.day)])

    async def usage(self, agent_id: str, day: date) -> Usage:
        keys = self._keys(day, agent_id, "settled", "res", "amt")
        with _redis_errors("read usage"):
            settled, reserved = _ints(await self._usage(keys=keys))
        return Usage(settled=nano_to_usd(settled), reserved=nano_to_usd(reserved))

    async def rebuild(self, day: date, settled_by_agent: dict[str, Decimal]) -> None:
        args: list[str | int] = [self._day_base(day), _expireat(day)]
        for agent_id, amount in settled_by_agent.items():
            if not agent_id:
                raise ValueError("agent ids must be non-empty")
            args += [agent_id, usd_to_nano(amount)]
        keys = [self._epoch, *self._keys(day, "", "agents")]
        with _redis_errors("rebuild"):
            await self._rebuild(keys=keys, args=args)

    async def needs_rebuild(self) -> bool:
        with _redis_errors("check the epoch"):
            return int(await self._client.exists(self._epoch)) == 0

    async def healthy(self) -> bool:
        try:
            return not await self.needs_rebuild()
        except BudgetUnavailable:
            return False

    async def aclose(self) -> None:
        # Queued reserves and releases are bounded by the pool's timeouts; let them finish
        # rather than cut them off with a closed pool.
        waiting = {t for t in (self._flusher, *self._releasing) if t is not None}
        if waiting:
            await asyncio.wait(waiting)
        if self._owns_client:
            await self._client.aclose(close_connection_pool=True)


@functools.lru_cache(maxsize=8)
def _expireat(day: date) -> int:
    # Every reserve and settle names its day's expiry; the day barely ever changes.
    return int(counters_expire_at(day).timestamp())


def _fail(queued: _QueuedReserve, doing: str, error: Exception) -> None:
    """Fails one caller with an exception of its own: one instance raised in many tasks would
    have each one's traceback appended to the others'."""
    if queued.reply.done():
        return
    if isinstance(error, BudgetUnavailable):
        own = BudgetUnavailable(*error.args)
        own.__cause__ = error.__cause__
    else:
        own = BudgetUnavailable(f"Redis budget counters could not {doing}: {error}")
        own.__cause__ = error
    queued.reply.set_exception(own)


def _ints(reply: Any) -> list[int]:
    if not isinstance(reply, Sequence):
        raise BudgetUnavailable(f"unexpected reply from a budget script: {reply!r}")
    return [int(v) for v in reply]
