"""The gateway's periodic repair: at start, then every heartbeat TTL, open inferences whose
owner is gone (a dead gateway, or a call of this one whose end could not be recorded) are
closed as `abandoned`; app/services/repair.py decides which, from the heartbeats."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from adapters.instances import InstancesUnavailable
from adapters.store import EventStore, StoreError
from adapters.writer import GroupCommitWriter, WriteFailedError
from app.services.read_side import ProjectionBehindError, ReadSide, ReadSideUnavailableError
from app.services.repair import Owners, repair_abandoned

log = logging.getLogger("ainfera.sweeper")


async def sweep_forever(read_side: ReadSide, store: EventStore, writer: GroupCommitWriter,
                        owners: Callable[[], Owners], interval_s: float) -> None:
    while True:
        try:
            await repair_abandoned(read_side, store, writer, owners)
        except (ProjectionBehindError, ReadSideUnavailableError, StoreError, WriteFailedError,
                InstancesUnavailable) as exc:
            log.error("could not repair abandoned inferences: %s", exc)
        await asyncio.sleep(interval_s)
