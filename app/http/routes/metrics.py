"""`/metrics`: the process's counters and histograms (app.telemetry), its projector's state (when
it runs one) and every projection's lag and position, in the Prometheus text format. No auth
and no tenant data: it is for the operator's scraper. Lag is read from the tracking rows, so it
is right whichever process runs the projections; while the database cannot be read those lines
are left out and the rest (the projector's own state included) still answers."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from litestar import Request, Response, get

from app.runtime import Runtime
from app.telemetry import CONTENT_TYPE

log = logging.getLogger("ainfera.metrics")


@get("/metrics", include_in_schema=False)
async def metrics(request: Request[Any, Any, Any]) -> Response[str]:
    runtime: Runtime = request.app.state.runtime
    read_side = runtime.read_side
    lags = positions = None
    # This process's projector, when it runs one (--projector=inprocess): its own state,
    # read without the database.
    projector = read_side.projector.state() if read_side.projector is not None else None
    try:
        positions = await asyncio.to_thread(read_side.positions)
        latest = await asyncio.to_thread(read_side.store.max_notification_id)
    except Exception:
        # Any driver or store failure: the scrape must still answer (and show a failing
        # projector).
        log.warning("/metrics: projection positions unreadable", exc_info=True)
        positions = None
    else:
        lags = {name: max(latest - pos, 0) for name, pos in positions.items()}
    body = runtime.metrics.render(projection_lags=lags, projection_positions=positions,
                                  projector=projector)
    return Response(content=body, media_type=CONTENT_TYPE)
