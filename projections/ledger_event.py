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

from domain.canonical_json import MAX_SAFE_INT, canonical_json
from domain.merkle import leaf_hash
from projections.view import utc_text

# Library bookkeeping that the envelope already shows under our names (or not at all).
_BOOKKEEPING: Final = frozenset(
    {"originator_id", "originator_version", "timestamp", "originator_topic"}
)
_AUDIT: Final = ("tenant_id", "agent_id", "request_id")


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


def canonical_leaf(event: Any, leaf_index: int, *, aggregate_id: str | None = None,
                   recorded_at: str | None = None) -> tuple[dict[str, Any], str, bytes]:
    """The event object, its canonical JSON text and its leaf hash SHA-256(0x00 || JCS).

    `aggregate_id` and `recorded_at`, when the caller already has them (the projector's
    `Sequenced` computes them once per event for every model), must be `str(originator_id)`
    and `utc_text(timestamp)`.

    This builds the object of `event_object` in one pass that also establishes what
    `canonical_json` would check before taking its fast path: every value of an exact type
    that the fast path takes as is (`_plain_value`), every key ASCII. Anything else (a float,
    a str or int subclass, a non-ASCII key, a value to refuse) sends the whole object the
    reference way, `event_object` then `canonical_bytes`, so its bytes and its errors are
    exactly theirs; tests/unit/ledger/test_leaf_fast_path.py holds the two paths together.
    The leaves were most of the projector's CPU, and the walk of the object twice (convert,
    then check) was a third of theirs."""
    kind = type(event).__name__
    version = event.originator_version
    obj: dict[str, Any] = {
        "leaf_index": leaf_index,
        "aggregate_id": str(event.originator_id) if aggregate_id is None else aggregate_id,
        "version": version,
        "type": kind,
        "recorded_at": utc_text(event.timestamp) if recorded_at is None else recorded_at,
        "tenant_id": None,
        "agent_id": None,
        "request_id": None,
    }
    plain = (type(leaf_index) is int and -MAX_SAFE_INT <= leaf_index <= MAX_SAFE_INT
             and type(version) is int and -MAX_SAFE_INT <= version <= MAX_SAFE_INT)
    for key, value in vars(event).items():
        if key in _BOOKKEEPING:
            continue
        if key in obj and key not in _AUDIT:
            raise LedgerEventError(f"{kind} has a field {key!r} that the envelope uses")
        converted = _plain_value(value) if plain else _NOT_PLAIN
        if converted is _NOT_PLAIN or type(key) is not str or not key.isascii():
            plain = False
            break
        obj[key] = converted
    if not plain:
        obj = event_object(event, leaf_index)
        data = canonical_bytes(obj)
    else:
        try:
            data = canonical_json(obj, known_plain=True)
        except rfc8785.CanonicalizationError as exc:  # as canonical_bytes reports it
            raise LedgerEventError(str(exc)) from exc
    return obj, data.decode("utf-8"), leaf_hash(data)


# What `_plain_value` returns for a value it does not take (None is a value it takes).
_NOT_PLAIN: Final = object()


def _plain_value(value: Any) -> Any:
    """`json_value(value, ...)` when the result is a JSON value that `canonical_json` encodes
    with the standard library's encoder (exact str, bool, None, int within 2**53, and dicts
    with ASCII str keys and lists of those), converting exact Decimals and UUIDs as
    `json_value` does; `_NOT_PLAIN` for anything else, without raising (the reference path
    then raises, or converts, with its own messages)."""
    kind = type(value)
    if kind is str or value is None or kind is bool:
        return value
    if kind is int:
        return value if -MAX_SAFE_INT <= value <= MAX_SAFE_INT else _NOT_PLAIN
    if kind is dict:
        out: dict[str, Any] = {}
        for key, item in value.items():
            if type(key) is not str or not key.isascii():
                return _NOT_PLAIN
            converted = _plain_value(item)
            if converted is _NOT_PLAIN:
                return _NOT_PLAIN
            out[key] = converted
        return out
    if kind is list or kind is tuple:
        items = []
        for item in value:
            converted = _plain_value(item)
            if converted is _NOT_PLAIN:
                return _NOT_PLAIN
            items.append(converted)
        return items
    if kind is Decimal:
        return format(value, "f") if value.is_finite() else _NOT_PLAIN
    if kind is UUID:
        return str(value)
    return _NOT_PLAIN


def json_value(value: Any, path: str) -> Any:
    """An event field as JSON: Decimals as plain decimal strings, UUIDs as text; floats,
    integers beyond 2**53 and other types are refused, naming `path`."""
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, int):
        if abs(value) > MAX_SAFE_INT:
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
