"""The ledger's view of one stored event: the JSON object a receipt shows and a leaf hashes.

`{"leaf_index", "aggregate_id", "version", "type", "recorded_at", "tenant_id", "agent_id",
"request_id", <the event's own fields>}`, with UUIDs as text, Decimals as plain decimal
strings and `recorded_at` as fixed-width ISO 8601 UTC. Its bytes are RFC 8785 canonical JSON
(the `rfc8785` library), the same canonicalisation `adapters.jcs` gives the offline
verifier; a test holds the two to the same bytes for every event kind.

What this must never do: approximate. A float, an integer beyond 2**53 or a value JSON cannot
hold raises `LedgerEventError` instead of being rounded or stringified, so the sequencer stops
rather than commit a leaf whose event no verifier could reproduce. The object is a pure
function of the stored event and its leaf index: `ainfera verify` rebuilds it from the store
and must get the same bytes.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any, Final
from uuid import UUID

import rfc8785

from domain.canonical_json import canonical_json
from domain.merkle import leaf_hash
from projections.view import utc_text

# Library bookkeeping that the envelope already shows under our names (or not at all).
_BOOKKEEPING: Final = frozenset(
    {"originator_id", "originator_version", "timestamp", "originator_topic"}
)
_AUDIT: Final = ("tenant_id", "agent_id", "request_id")
_MAX_SAFE_INT: Final = 2**53 - 1


def event_object(event: Any, leaf_index: int) -> dict[str, Any]:
    """The JSON object of `event` as leaf `leaf_index` of the ledger."""
    obj: dict[str, Any] = {
        "leaf_index": leaf_index,
        "aggregate_id": str(event.originator_id),
        "version": event.originator_version,
        "type": type(event).__name__,
        "recorded_at": utc_text(event.timestamp),
    }
    # Events created outside an audit context cannot exist (domain.events), but a missing
    # audit field must still show as null rather than vanish from the object.
    for key in _AUDIT:
        obj[key] = None
    for key, value in vars(event).items():
        if key in _BOOKKEEPING:
            continue
        if key in obj and key not in _AUDIT:
            raise LedgerEventError(f"{obj['type']} has a field {key!r} that the envelope uses")
        obj[key] = json_value(value, f"{obj['type']}.{key}")
    return obj


def canonical_bytes(obj: Mapping[str, Any]) -> bytes:
    """RFC 8785 canonical JSON of an event object built by `event_object`."""
    try:
        return canonical_json(dict(obj))
    except rfc8785.CanonicalizationError as exc:
        raise LedgerEventError(str(exc)) from exc


def canonical_leaf(event: Any, leaf_index: int) -> tuple[dict[str, Any], str, bytes]:
    """The event object, its canonical JSON text and its leaf hash SHA-256(0x00 || JCS)."""
    obj = event_object(event, leaf_index)
    data = canonical_bytes(obj)
    return obj, data.decode("utf-8"), leaf_hash(data)


def json_value(value: Any, path: str) -> Any:
    """An event field as JSON: Decimals as plain decimal strings, UUIDs as text; floats,
    integers beyond 2**53 and other types are refused, naming `path`."""
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, int):
        if abs(value) > _MAX_SAFE_INT:
            raise LedgerEventError(f"{path} = {value} is beyond 2**53, which JSON cannot hold")
        return value
    if isinstance(value, float):
        raise LedgerEventError(f"{path} is a float ({value!r}); ledger events carry decimals "
                               "as strings or Decimal")
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise LedgerEventError(f"{path} is {value}, not a finite amount")
        return format(value, "f")
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, list | tuple):
        return [json_value(item, f"{path}[{i}]") for i, item in enumerate(value)]
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise LedgerEventError(f"{path} has a non-string key {key!r}")
            out[key] = json_value(item, f"{path}.{key}")
        return out
    raise LedgerEventError(f"{path} is a {type(value).__name__}, which a ledger event cannot hold")


class LedgerEventError(ValueError):
    """An event with no exact JSON form; the sequencer refuses to give it a leaf."""
