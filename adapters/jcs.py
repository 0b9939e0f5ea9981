"""RFC 8785 canonical JSON (JCS) of ledger events, and the leaf hash built from it.

`leaf_hash = SHA-256(0x00 || JCS(event))` (DESIGN section 5): the event object exactly as a
receipt shows it, so anyone can recompute it from the receipt alone. The stored event bytes are
never hashed; they are not canonical.

Events hold no floats. RFC 8785 has no decimal type and serialises numbers as IEEE 754 doubles,
so money and other decimals must already be strings ("0.000123") when the event object is built;
`jcs` refuses a float instead of silently rounding it. Integers must fit in 53 bits for the same
reason.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import rfc8785

from domain.canonical_json import canonical_json
from domain.merkle import leaf_hash


def jcs(obj: Any) -> bytes:
    """The RFC 8785 canonical UTF-8 bytes of a JSON value built from dict, list, str, int, bool,
    None."""
    _check_value(obj, "$")
    try:
        return canonical_json(obj)
    except rfc8785.CanonicalizationError as exc:
        raise CanonicalJsonError(str(exc)) from exc


def leaf_hash_of_event(event: Mapping[str, Any]) -> bytes:
    """SHA-256(0x00 || JCS(event)): the ledger leaf of one event object."""
    if not isinstance(event, Mapping):
        raise CanonicalJsonError(f"an event is a JSON object, not {type(event).__name__}")
    return leaf_hash(jcs(dict(event)))


def _check_value(value: Any, path: str) -> None:
    if value is None or isinstance(value, bool | int | str):
        return
    if isinstance(value, float):
        raise CanonicalJsonError(
            f"{path} is a float ({value!r}); ledger events carry decimals as strings"
        )
    if isinstance(value, list | tuple):
        for i, item in enumerate(value):
            _check_value(item, f"{path}[{i}]")
        return
    if isinstance(value, Mapping):
        for key, item in value.items():
            if not isinstance(key, str):
                raise CanonicalJsonError(f"{path} has a non-string key {key!r}")
            _check_value(item, f"{path}.{key}")
        return
    raise CanonicalJsonError(f"{path} is a {type(value).__name__}, which JSON cannot hold")


class CanonicalJsonError(ValueError):
    """A value with no RFC 8785 form under our rules (floats, big integers, non-JSON types)."""
