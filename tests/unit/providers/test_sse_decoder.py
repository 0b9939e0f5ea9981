"""The incremental SSE decoder: events come out whole however the bytes were split."""

from __future__ import annotations

import pytest

from adapters.providers.sse import ServerSentEvent, SSEDecoder

STREAM = (
    b'event: message_start\r\ndata: {"a": "\xc3\xa9t\xc3\xa9"}\r\n\r\n'
    b": a comment line\n"
    b"data: line one\ndata: line two\n\n"
    b"event: ping\rdata: {}\r\r"
)
EXPECTED = [
    ServerSentEvent("message_start", '{"a": "été"}'),
    ServerSentEvent(None, "line one\nline two"),
    ServerSentEvent("ping", "{}"),
]


def decode_in_pieces(data: bytes, size: int) -> list[ServerSentEvent]:
    decoder = SSEDecoder()
    events = []
    for start in range(0, len(data), size):
        events += decoder.feed(data[start : start + size])
    return events + decoder.flush()


@pytest.mark.parametrize("size", [1, 2, 3, 7, 1000])
def test_events_survive_any_split_of_the_bytes(size: int) -> None:
    # Size 1 splits CRLF pairs and the two-byte UTF-8 characters across reads.
    assert decode_in_pieces(STREAM, size) == EXPECTED


def test_a_crlf_split_across_reads_is_one_line_ending() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"data: x\r") == []
    assert decoder.feed(b"\n\r") == []
    assert decoder.feed(b"\n") == [ServerSentEvent(None, "x")]


def test_an_unterminated_last_event_is_flushed_at_end_of_body() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"data: [DONE]") == []
    assert decoder.flush() == [ServerSentEvent(None, "[DONE]")]


def test_field_values_keep_all_but_one_leading_space() -> None:
    assert decode_in_pieces(b"data:x\ndata:  y\n\n", 4) == [ServerSentEvent(None, "x\n y")]


def test_blank_lines_alone_make_no_event() -> None:
    assert decode_in_pieces(b"\n\n\r\n: keep-alive\n\n", 2) == []
