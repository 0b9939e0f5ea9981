"""The ledger over HTTP: an inference's receipt, the latest signed checkpoint, consistency
proofs between signed sizes, and the verifier key.

Who may read what: a receipt shows an inference's events, so it is tenant-scoped like every
read (API key; another tenant's id is 404). The checkpoint, consistency proofs and public key
are public without a key: they reveal only tree sizes and hashes, and a transparency log is
only useful if anyone can fetch its checkpoints to compare what they were shown
(docs/compliance.md).
"""

from __future__ import annotations

import asyncio
from typing import Any

from litestar import MediaType, Request, Response, get
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath, FromQuery

from adapters.receipts import tlog_proofs_of_receipt
from app.http.auth import provide_principal
from app.http.errors import InvalidRequestError, NotFoundError
from app.http.routes.inferences import load_owned_inference
from app.jobs.checkpointer import Ledger
from app.runtime import Runtime
from app.services.read_side import ReadSide
from app.services.tenancy import Principal
from domain.ids import public_inference_id
from projections.ledger_receipts import (
    BadSizeError,
    Pending,
    build_receipt,
    consistency,
    latest_note,
    recent_checkpoints,
)

CALLER = {"caller": Provide(provide_principal)}
RETRY_AFTER_S = "1"
FORMATS = ("receipt", "tlog-proof")


def _ledger_and_reads(request: Request[Any, Any, Any]) -> tuple[Ledger, ReadSide]:
    runtime: Runtime = request.app.state.runtime
    return runtime.ledger, runtime.read_side


@get("/v1/inferences/{inference_id:str}/receipt", dependencies=CALLER)
async def get_receipt(request: Request[Any, Any, Any], inference_id: FromPath[str],
                      caller: NamedDependency[Principal], format: FromQuery[str] = "receipt",
                      since: FromQuery[int | None] = None) -> Response[Any]:
    """The inference's receipt (`format=receipt`, DESIGN section 5) or one C2SP tlog-proof
    per leaf (`format=tlog-proof`). `since=N`, the size of a checkpoint the caller kept, adds a
    consistency proof from it. 202 with Retry-After until every event is in a checkpoint."""
    if format not in FORMATS:
        raise InvalidRequestError(f"format must be one of {', '.join(FORMATS)}, not {format!r}",
                                  param="format")
    runtime: Runtime = request.app.state.runtime
    ledger, reads = _ledger_and_reads(request)
    uid, events = await asyncio.to_thread(load_owned_inference, runtime.store, inference_id,
                                          caller)
    public_id = public_inference_id(uid, events[0].api)
    try:
        receipt = await reads.read(lambda s: build_receipt(
            s, str(uid), public_id, ledger.origin, len(events), since))
    except BadSizeError as exc:
        raise InvalidRequestError(str(exc), param="since") from None
    if isinstance(receipt, Pending):
        # Wake the sequencer and the checkpointer rather than wait for their next tick.
        if reads.projector is not None:
            reads.projector.nudge()
        ledger.request_checkpoint()
        return Response(
            content={"status": "pending", "inference_id": public_id, "detail": receipt.reason},
            status_code=202, headers={"retry-after": RETRY_AFTER_S},
        )
    if format == "tlog-proof":
        proofs = tlog_proofs_of_receipt(receipt)
        return Response(content={
            "inference_id": public_id,
            "proofs": [{"leaf_index": i, "tlog_proof": text} for i, text in proofs.items()],
        })
    return Response(content=receipt)


@get("/v1/ledger/checkpoint", media_type=MediaType.TEXT)
async def get_checkpoint(request: Request[Any, Any, Any]) -> str:
    """The latest signed checkpoint, as C2SP signed-note text."""
    _, reads = _ledger_and_reads(request)
    note = await reads.read(latest_note)
    if note is None:
        raise NotFoundError("no checkpoint has been signed yet: the ledger is empty")
    return note


@get("/v1/ledger/consistency")
async def get_consistency(request: Request[Any, Any, Any], first: FromQuery[int],
                          second: FromQuery[int]) -> dict[str, Any]:
    """RFC 9162 consistency proof between two tree sizes, both within the latest signed
    checkpoint: `{"first", "second", "proof": [base64 hashes]}`."""
    _, reads = _ledger_and_reads(request)
    try:
        return await reads.read(lambda s: consistency(s, first, second))
    except BadSizeError as exc:
        raise InvalidRequestError(str(exc), param="first") from None


@get("/v1/ledger/checkpoints")
async def list_checkpoints(request: Request[Any, Any, Any], limit: FromQuery[int] = 20,
                           before: FromQuery[int | None] = None) -> dict[str, Any]:
    """Signed checkpoints, newest (largest) first: `{checkpoints: [{tree_size, root_hash,
    note, signed_at}], next_before}`; `before` (a tree size) pages back. Public, like the
    latest checkpoint: keep any of them and check later logs against it."""
    if not 1 <= limit <= 100:
        raise InvalidRequestError("limit must be from 1 to 100", param="limit")
    _, reads = _ledger_and_reads(request)
    rows = await reads.read(lambda s: recent_checkpoints(s, limit + 1, before))
    more = len(rows) > limit
    rows = rows[:limit]
    return {"checkpoints": rows, "next_before": rows[-1]["tree_size"] if more and rows else None}


@get("/v1/ledger/public-key")
async def get_public_key(request: Request[Any, Any, Any]) -> dict[str, str]:
    """The log's verifier key in C2SP note form: `<name>+<hex key id>+<base64 key>`."""
    ledger, _ = _ledger_and_reads(request)
    return {"vkey": ledger.vkey}


ROUTES = [get_receipt, get_checkpoint, get_consistency, list_checkpoints, get_public_key]
