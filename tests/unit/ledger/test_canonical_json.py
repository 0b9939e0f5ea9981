"""The fast canonical JSON is the `rfc8785` package's bytes, byte for byte: leaf hashes (and
receipts already issued) depend on it."""

from __future__ import annotations

import json
from typing import Any

import pytest
import rfc8785
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from domain import canonical_json as module
from domain.canonical_json import MAX_SAFE_INT, canonical_json

# Characters where JSON serialisers are known to disagree: controls (short and \u00xx
# escapes), quote and backslash, DEL, the C1 controls, U+2028/U+2029 (which some encoders
# escape), the top of the BMP and astral characters (UTF-16 key order), and lone surrogates.
_TRICKY = st.sampled_from(
    [chr(c) for c in range(0x20)]
    + ['"', "\\", "/", "\x7f", "\x80", "\x9f", "\u2028", "\u2029", "\ufeff", "\ue000",
       "\uffff", "\U0001f600", "\U0010ffff", "\ud800", "\udfff"]
)
_TEXT = st.lists(st.one_of(_TRICKY, st.characters()), max_size=12).map("".join)
_ASCII_KEY = st.text(st.characters(max_codepoint=0x7F), max_size=8)
_INT = st.one_of(st.integers(-MAX_SAFE_INT, MAX_SAFE_INT),
                 st.sampled_from([0, -1, MAX_SAFE_INT, -MAX_SAFE_INT]))
_SCALAR = st.one_of(st.none(), st.booleans(), _INT, _TEXT)


def _values(keys: st.SearchStrategy[str]) -> st.SearchStrategy[Any]:
    return st.recursive(
        _SCALAR,
        lambda inner: st.one_of(st.lists(inner, max_size=5),
                                st.tuples(inner, inner),
                                st.dictionaries(keys, inner, max_size=6)),
        max_leaves=30)


def _package(value: Any) -> bytes | type[Exception]:
    try:
        return rfc8785.dumps(value)
    except (rfc8785.CanonicalizationError, UnicodeEncodeError) as exc:
        # The package sorts keys by their UTF-16 form, which a lone surrogate in a key has
        # not: it raises UnicodeEncodeError there, and must keep doing so through ours.
        return type(exc)


def _ours(value: Any) -> bytes | type[Exception]:
    try:
        return canonical_json(value)
    except (rfc8785.CanonicalizationError, UnicodeEncodeError) as exc:
        # The package sorts keys by their UTF-16 form, which a lone surrogate in a key has
        # not: it raises UnicodeEncodeError there, and must keep doing so through ours.
        return type(exc)


@settings(max_examples=3000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_values(_ASCII_KEY))
def test_event_shaped_values_give_the_package_bytes(value: Any) -> None:
    assert _ours(value) == _package(value)


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_values(st.one_of(_ASCII_KEY, _TEXT)))
def test_any_keys_give_the_package_bytes(value: Any) -> None:
    assert _ours(value) == _package(value)


@settings(max_examples=500, deadline=None)
@given(st.dictionaries(_ASCII_KEY, _SCALAR, min_size=1, max_size=8))
def test_ascii_keyed_objects_take_the_fast_path(value: dict[str, Any]) -> None:
    # The equivalence tests above would pass with no fast path at all: check it is taken for
    # what events hold, unless a string holds a lone surrogate (no UTF-8 form).
    surrogate = any(isinstance(v, str) and any(0xD800 <= ord(c) <= 0xDFFF for c in v)
                    for v in value.values())
    assert module._plain(value)
    if not surrogate:
        assert canonical_json(value) == json.dumps(
            value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def test_floats_go_the_slow_way() -> None:
    # Refusing floats is the callers' rule (adapters.jcs, projections.ledger_event); here a
    # float must still get the package's ECMAScript form, never Python's repr.
    value = {"a": 1e21, "b": 0.1, "c": 5e-7}
    assert not module._plain(value)
    assert canonical_json(value) == rfc8785.dumps(value) == b'{"a":1e+21,"b":0.1,"c":5e-7}'


def test_a_key_order_the_fast_encoder_gets_wrong_goes_the_slow_way() -> None:
    # U+E000 sorts before U+1F600 by code point but after it in UTF-16 (0xD83D 0xDE00).
    value = {"\ue000": 1, "\U0001f600": 2}
    naive = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert canonical_json(value) == rfc8785.dumps(value) != naive.encode()
    assert canonical_json(value) == '{"\U0001f600":2,"\ue000":1}'.encode()


@pytest.mark.parametrize("text", ["\x00\x08\t\n\x0b\x0c\r\x1f\x7f", "\u2028\u2029", '"\\/'])
def test_escapes_are_those_of_rfc_8785_section_3_2_2_2(text: str) -> None:
    assert canonical_json({"s": text}) == rfc8785.dumps({"s": text})
    assert canonical_json("\x00\x1f\x0b") == b'"\\u0000\\u001f\\u000b"'
    assert canonical_json("\u2028\u2029") == "\u2028\u2029".join('""').encode()


@pytest.mark.parametrize(
    ("value", "error"),
    [
        ([2**53], rfc8785.IntegerDomainError),
        ({"n": -(2**53)}, rfc8785.IntegerDomainError),
        ({"s": "\ud800"}, rfc8785.CanonicalizationError),
        ({1: "x"}, rfc8785.CanonicalizationError),
        ({"when": object()}, rfc8785.CanonicalizationError),
    ],
)
def test_values_without_a_canonical_form_are_refused_as_before(
        value: Any, error: type[Exception]) -> None:
    with pytest.raises(error):
        canonical_json(value)
