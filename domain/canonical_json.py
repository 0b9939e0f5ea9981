"""RFC 8785 (JCS) bytes of a JSON value, through the standard library's C encoder whenever its
output is provably the same bytes, else through the pure-Python `rfc8785` package.

Why: the `rfc8785` package writes every value through BytesIO and runs a regular expression
per string; canonicalising leaves was the largest single cost of the projector. The ledger's
leaf hashes are over these bytes, so the fast path must never produce a different byte.

When `json.dumps(v, sort_keys=True, separators=(",", ":"), ensure_ascii=False)` encoded as
UTF-8 equals RFC 8785 (section 3.2.2 and 3.2.3), checked against the package by
tests/unit/ledger/test_canonical_json.py:

* Strings: both escape exactly `"`, `\\` and U+0000..U+001F, with the short forms \\b \\t \\n
  \\f \\r and `\\u00xx` in lowercase hex for the other controls; both leave U+007F, U+2028,
  U+2029 and every other character as it is. A lone surrogate cannot be UTF-8: encoding
  fails, and the slow path raises its own error for it.
* Object keys: JCS sorts by UTF-16 code units, `sort_keys` by code points. The orders differ
  only between an astral key character and one in U+E000..U+FFFF, so the fast path takes
  ASCII keys only (every key an event has) and anything else goes the slow way.
* Numbers: only exact `int` within +-(2**53 - 1) (`repr` is JCS's form of such an integer);
  floats, bigger integers, `bool`/`int`/`str` subclasses, other mappings and any other type
  go to the slow path, which refuses or serialises them exactly as before.
"""

from __future__ import annotations

import json
from typing import Any, Final

import rfc8785

MAX_SAFE_INT: Final = 2**53 - 1

_encode = json.JSONEncoder(ensure_ascii=False, sort_keys=True, separators=(",", ":"),
                           check_circular=False, allow_nan=False).encode


def canonical_json(obj: Any, *, known_plain: bool = False) -> bytes:
    """The RFC 8785 canonical UTF-8 bytes of `obj`; raises `rfc8785.CanonicalizationError`
    (or a subclass) for a value with no canonical form, as `rfc8785.dumps` does.

    `known_plain`: the caller built `obj` from values it checked by the rules of `_plain`
    (the ledger's leaves, from exact types), so the walk that would re-check them is skipped;
    passing it for anything else could give bytes that are not RFC 8785's."""
    if known_plain or _plain(obj):
        try:
            return _encode(obj).encode("utf-8")
        except UnicodeEncodeError:
            pass  # a lone surrogate: the package reports it in its own terms
    return rfc8785.dumps(obj)


def _plain(value: Any) -> bool:
    """True when the fast path's bytes are provably RFC 8785's for `value` (see above)."""
    kind = type(value)
    if kind is dict:
        for key, item in value.items():
            if type(key) is not str or not key.isascii() or not _plain_item(item):
                return False
        return True
    if kind is list or kind is tuple:
        return all(map(_plain_item, value))
    return _plain_item(value)


def _plain_item(value: Any) -> bool:
    # Scalars are decided here without a call per value: an event has a dozen or more.
    kind = type(value)
    if kind is str or value is None or kind is bool:
        return True
    if kind is int:
        return bool(-MAX_SAFE_INT <= value <= MAX_SAFE_INT)
    if kind is dict or kind is list or kind is tuple:
        return _plain(value)
    return False
