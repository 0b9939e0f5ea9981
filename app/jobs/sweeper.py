"""The gateway's periodic repair: at start, then every SWEEP_INTERVAL_S, inferences whose
process died are closed as `abandoned` (app/services/repair.py decides which)."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

from adapters.store import EventStore, StoreError
from adapters.writer import GroupCommitWriter, WriteFailedError
from app.services.read_side import ProjectionBehindError, ReadSide, ReadSideUnavailableError
from app.services.repair import repair_abandoned

log = logging.getLogger("ainfera.sweeper")

SWEEP_INTERVAL_S = 60.0


async def sweep_forever(read_side: ReadSide, store: EventStore, writer: GroupCommitWriter,
                        grace: timedelta) -> None:
    while True:
        try:
            await repair_abandoned(read_side, store, writer, grace)
        except (ProjectionBehindError, ReadSideUnavailableError, StoreError,
                WriteFailedError) as exc:
            log.error("could not repair abandoned inferences: %s", exc)
        await asyncio.sleep(SWEEP_INTERVAL_S)
