"""`GET /v1/inferences`: the tenant's (or one agent's) inferences as a page of a stable list,
built from the read models. Pure over a read snapshot: the HTTP layer picks the tenant, the
scope and the consistency, and parses the query.

The response shape (documented in docs/console.md) uses public ids (`msg_...`, `chatcmpl-...`)
and decimal-string money, like every other read.
"""

from __future__ import annotations

import base64
import binascii
import json
from datetime import UTC, date, datetime, time
from typing import Any, Final
from uuid import UUID

from domain.ids import public_inference_id
from domain.inference import ROUTERS, STATUSES
from domain.money import from_nanos, usd_str
from projections.inference_list import IN_FLIGHT, InferenceFilter, InferenceRow, list_inferences
from projections.view import Session, utc_text

DEFAULT_LIMIT: Final = 50
MAX_LIMIT: Final = 200
STATUS_FILTERS: Final = (*sorted(STATUSES), IN_FLIGHT)


def page(session: Session, where: InferenceFilter, limit: int,
         cursor: str | None) -> dict[str, Any]:
    """One page: `data` newest first, `has_more`, and `next_cursor` to fetch the next page."""
    after = decode_cursor(cursor) if cursor else None
    rows = list_inferences(session, where, limit + 1, after)
    more = len(rows) > limit
    rows = rows[:limit]
    return {
        "object": "list",
        "data": [inference_item(row) for row in rows],
        "has_more": more,
        "next_cursor": encode_cursor(rows[-1]) if more and rows else None,
    }


def inference_item(row: InferenceRow) -> dict[str, Any]:
    return {
        "id": public_inference_id(UUID(row.inference_id), row.api),
        "object": "inference",
        "api": row.api,
        "agent_id": row.agent_id,
        "agent_name": row.agent_name,
        "router": row.router,
        "requested_model": row.requested_model,
        "chosen_model": row.chosen_model,
        "alias_hit": row.alias_hit,
        "status": row.status or IN_FLIGHT,
        "latency_ms": row.latency_ms,
        "cost_usd": None if row.cost_nano_usd is None else usd_str(from_nanos(row.cost_nano_usd)),
        "created_at": row.created_at,
        "completed_at": row.completed_at,
    }


def encode_cursor(row: InferenceRow) -> str:
    raw = json.dumps([row.created_at, row.inference_id], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[str, str]:
    """The (created_at, inference_id) a cursor stands for; BadQueryError for anything this
    endpoint did not hand out."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        created_at, inference_id = json.loads(raw)
        UUID(inference_id)
        if not isinstance(created_at, str):
            raise ValueError(created_at)
    except (binascii.Error, ValueError, TypeError):
        raise BadQueryError("cursor", "cursor is not one this endpoint handed out") from None
    return created_at, inference_id


def parse_statuses(text: str | None) -> tuple[str, ...]:
    if text is None:
        return ()
    wanted = tuple(s.strip() for s in text.split(",") if s.strip())
    unknown = [s for s in wanted if s not in STATUS_FILTERS]
    if unknown or not wanted:
        raise BadQueryError("status", f"status must be one or more (comma-separated) of "
                                      f"{', '.join(STATUS_FILTERS)}, not {text!r}")
    return wanted


def parse_router(text: str | None) -> str | None:
    if text is not None and text not in ROUTERS:
        raise BadQueryError("router", f"router must be one of {', '.join(sorted(ROUTERS))}, "
                                      f"not {text!r}")
    return text


def parse_limit(text: str | None) -> int:
    if text is None:
        return DEFAULT_LIMIT
    if not text.strip().isdigit() or not 1 <= int(text) <= MAX_LIMIT:
        raise BadQueryError("limit", f"limit must be a whole number from 1 to {MAX_LIMIT}, "
                                     f"not {text!r}")
    return int(text)


def parse_moment(text: str | None, param: str) -> str | None:
    """A bound on the Routed time: a UTC date (its midnight) or an ISO 8601 time with `Z` or
    an offset. A time without a zone is refused: whose midnight it means is a guess."""
    if text is None:
        return None
    try:
        if len(text) == 10:
            moment = datetime.combine(date.fromisoformat(text), time(), tzinfo=UTC)
        else:
            moment = datetime.fromisoformat(text.replace("z", "Z"))
    except ValueError:
        raise BadQueryError(param, f"{param} must be a date (2026-11-29) or an ISO 8601 time "
                                   f"with Z or an offset, not {text!r}") from None
    if moment.tzinfo is None:
        raise BadQueryError(param, f"{param} {text!r} has no time zone: add Z (UTC) or an "
                                   "offset such as +02:00")
    return utc_text(moment)


class BadQueryError(ValueError):
    """A query parameter the list cannot be filtered by; `param` names it."""

    def __init__(self, param: str, message: str) -> None:
        super().__init__(message)
        self.param = param
