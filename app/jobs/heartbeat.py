"""The gateway's heartbeat: its row in `gateway_instances`, refreshed every few seconds while
it runs and marked stopped when it shuts down (after its calls in flight have been recorded).
Crash repair anywhere reads these rows to tell a dead gateway's open calls from a live one's.
A beat that fails (the store is down) is logged and tried again at the next interval; the row
remembers when the current unbroken run of beats began.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from datetime import UTC, datetime, timedelta

from adapters.instances import GatewayInstances, InstancesUnavailable
from app.services.repair import heartbeat_interval

log = logging.getLogger("ainfera.heartbeat")


class Heartbeat:
    def __init__(self, instances: GatewayInstances, instance_id: str, ttl: timedelta) -> None:
        self.instance_id = instance_id
        self._instances = instances
        self._interval = heartbeat_interval(ttl)
        self._started_at = datetime.now(UTC)
        self._run_since = self._started_at
        self._last_ok: float | None = None
        self._failing = False
        self._task: asyncio.Task[None] | None = None

    async def beat(self) -> bool:
        now, clock = datetime.now(UTC), time.monotonic()
        if self._last_ok is None or clock - self._last_ok > 2.5 * self._interval:
            self._run_since = now  # the run of beats was broken (or is starting)
        try:
            await asyncio.to_thread(self._instances.beat, self.instance_id, self._started_at,
                                    now, self._run_since)
        except InstancesUnavailable as exc:
            if not self._failing:
                log.warning("heartbeat of %s not recorded: %s", self.instance_id, exc)
            self._failing = True
            return False
        if self._failing:
            log.warning("heartbeat of %s recorded again", self.instance_id)
        self._failing = False
        self._last_ok = clock
        return True

    def start(self) -> None:
        self._task = asyncio.ensure_future(self._run())

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            await self.beat()

    async def stop(self) -> None:
        """Stops beating and marks this instance stopped: its calls have ended by now."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        try:
            await asyncio.to_thread(self._instances.stopped, self.instance_id,
                                    datetime.now(UTC))
        except InstancesUnavailable as exc:
            # Then its heartbeat simply stops; repair waits out the TTL instead.
            log.warning("could not mark %s stopped: %s", self.instance_id, exc)
