"""RFC 8785 canonical JSON of events and the leaf hash over it; floats are refused."""

from __future__ import annotations

from hashlib import sha256

import pytest

from adapters.jcs import CanonicalJsonError, jcs, leaf_hash_of_event


def test_keys_sort_by_utf16_code_units_as_rfc_8785_shows() -> None:
    # RFC 8785 section 3.2.3's example: U+1F600 sorts before U+FB33 in UTF-16 (a surrogate pair
    # starting 0xD83D), though after it by code point.
    obj = {
        "\u20ac": "Euro Sign",
        "\r": "Carriage Return",
        "\ufb33": "Hebrew Letter Dalet With Dagesh",
        "1": "One",
        "\U0001f600": "Emoji: Grinning Face",
        "\u0080": "Control",
        "\u00f6": "Latin Small Letter O With Diaeresis",
    }
    keys = ["\r", "1", "\u0080", "\u00f6", "\u20ac", "\U0001f600", "\ufb33"]
    expected = "{" + ",".join(f'"{k}":"{obj[k]}"' for k in keys).replace("\r", "\\r") + "}"
    assert jcs(obj) == expected.encode()


def test_whitespace_and_literals_are_canonical() -> None:
    event = {"b": [True, None, False], "a": {"z": 1, "y": "caf\u00e9"}, "cost_usd": "0.000123"}
    assert (
        jcs(event) == b'{"a":{"y":"caf\xc3\xa9","z":1},"b":[true,null,false],"cost_usd":"0.000123"}'
    )


def test_leaf_hash_is_sha256_of_zero_byte_and_jcs() -> None:
    event = {"type": "Routed", "leaf_index": 3, "version": 1}
    assert leaf_hash_of_event(event) == sha256(b"\x00" + jcs(event)).digest()
    reordered = {"version": 1, "leaf_index": 3, "type": "Routed"}
    assert leaf_hash_of_event(reordered) == leaf_hash_of_event(event)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({"cost_usd": 0.5}, r"\$\.cost_usd is a float"),
        ({"usage": {"list": [1, 2.0]}}, r"\$\.usage\.list\[1\] is a float"),
        ({1: "x"}, "non-string key"),
        ({"when": object()}, "which JSON cannot hold"),
        ({"big": 2**53}, "exceeds safe integer domain"),
    ],
)
def test_values_without_one_canonical_form_are_refused(value: object, message: str) -> None:
    with pytest.raises(CanonicalJsonError, match=message):
        jcs(value)


def test_an_event_must_be_an_object() -> None:
    with pytest.raises(CanonicalJsonError, match="JSON object"):
        leaf_hash_of_event(["not", "an", "event"])  # type: ignore[arg-type]
