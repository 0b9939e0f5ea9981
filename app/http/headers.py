"""The response headers that point a caller at what the ledger holds of its call (DESIGN
section 6), on answers and on recorded refusals alike."""

from __future__ import annotations

from app.services.calls import Recorded


def inference_headers(recorded: Recorded) -> dict[str, str]:
    headers = {
        "x-ainfera-inference-id": recorded.public_id,
        "x-ainfera-agent-id": recorded.agent_id,
        "x-ainfera-audit-url": f"/v1/inferences/{recorded.public_id}",
        "x-ainfera-router": recorded.router,
        "x-ainfera-stream-mode": "native",
    }
    if recorded.position is not None:
        # A dashboard read sent with `x-ainfera-after: N` waits until the projections hold it.
        headers["x-ainfera-ledger-position"] = str(recorded.position)
    return headers
