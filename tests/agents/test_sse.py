"""The providers' SSE decoder: the WHATWG line rules, whatever the chunking."""

from __future__ import annotations

from itertools import pairwise

from hypothesis import given, strategies as st

from agents.providers._sse import ServerSentEvent, SSEDecoder

STREAM = (
    b": a comment\r\n"
    b"event: message_start\r\n"
    b'data: {"a": 1}\r\n'
    b"\r\n"
    b"data: first line\n"
    b"data:second line\n"
    b"id: 7\n"
    b"retry: 100\n"
    b"\n"
    b"event: ping\rdata: {}\r\r"
    b"data\n\n"
    b"data: [DONE]\n\n"
)
EXPECTED = [
    ServerSentEvent("message_start", b'{"a": 1}'),
    ServerSentEvent("", b"first line\nsecond line"),
    ServerSentEvent("ping", b"{}"),
    ServerSentEvent("", b""),
    ServerSentEvent("", b"[DONE]"),
]


def decode(chunks: list[bytes]) -> list[ServerSentEvent]:
    decoder = SSEDecoder()
    events = [event for chunk in chunks for event in decoder.feed(chunk)]
    return events + decoder.close()


def test_whole_stream_in_one_chunk() -> None:
    assert decode([STREAM]) == EXPECTED


def test_byte_by_byte_including_a_crlf_split_across_chunks() -> None:
    assert decode([STREAM[i : i + 1] for i in range(len(STREAM))]) == EXPECTED


@given(st.lists(st.integers(min_value=0, max_value=len(STREAM)), max_size=20))
def test_any_chunking_gives_the_same_events(cuts: list[int]) -> None:
    bounds = [0, *sorted(cuts), len(STREAM)]
    assert decode([STREAM[a:b] for a, b in pairwise(bounds)]) == EXPECTED


def test_an_event_without_its_blank_line_is_flushed_at_the_end() -> None:
    assert decode([b"data: tail"]) == [ServerSentEvent("", b"tail")]
    assert decode([b"data: tail\r"]) == [ServerSentEvent("", b"tail")]
    assert decode([b""]) == []
