"""`/metrics`: the process's counters and histograms (app.telemetry) and every projection's lag
and position, in the Prometheus text format. No auth and no tenant data: it is for the
operator's scraper. Lag is read from the tracking rows, so it is right whichever process runs
the projections."""

from __future__ import annotations

import asyncio
from typing import Any

from litestar import Request, Response, get

from app.runtime import Runtime
from app.telemetry import CONTENT_TYPE


@get("/metrics", include_in_schema=False)
async def metrics(request: Request[Any, Any, Any]) -> Response[str]:
    runtime: Runtime = request.app.state.runtime
    read_side = runtime.read_side
    positions = await asyncio.to_thread(read_side.positions)
    latest = await asyncio.to_thread(read_side.store.max_notification_id)
    lags = {name: max(latest - pos, 0) for name, pos in positions.items()}
    body = runtime.metrics.render(projection_lags=lags, projection_positions=positions)
    return Response(content=body, media_type=CONTENT_TYPE)
