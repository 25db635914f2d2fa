"""An incremental ``text/event-stream`` decoder: bytes in, whole events out.

Both SDKs decode their streams into one pydantic model per chunk; with a tool set in the
request that construction is about half of the client's CPU per streamed answer (measured in
``bench/agent.py``), so the providers read the SDK's raw response and decode it here. The
rules are the WHATWG ones: lines end in CRLF, LF or CR; a blank line ends an event; ``data``
lines join with LF; lines starting with ``:`` are comments; one space after the colon is
dropped. ``id`` and ``retry`` mean nothing to a one-shot model stream and are ignored.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ServerSentEvent:
    event: str
    """The ``event:`` field; ``""`` when absent (the spec's default type ``message``)."""
    data: bytes


class SSEDecoder:
    __slots__ = ("_data", "_event", "_pending")

    def __init__(self) -> None:
        self._pending = b""
        self._event = ""
        self._data: list[bytes] = []

    def feed(self, chunk: bytes) -> list[ServerSentEvent]:
        """The events completed by ``chunk``; a partial line waits for the next chunk."""
        buf = self._pending + chunk
        # A CR at the very end may be the first half of a CRLF split across chunks.
        if buf.endswith(b"\r"):
            buf, self._pending = buf[:-1], b"\r"
        else:
            self._pending = b""
        if b"\r" in buf:
            buf = buf.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        lines = buf.split(b"\n")
        self._pending = lines.pop() + self._pending
        events: list[ServerSentEvent] = []
        for line in lines:
            if not line:
                if self._data:
                    events.append(ServerSentEvent(self._event, b"\n".join(self._data)))
                self._event, self._data = "", []
                continue
            name, colon, value = line.partition(b":")
            if not colon or not name:  # a field with no value, or a comment
                if name == b"data":
                    self._data.append(b"")
                continue
            if value[:1] == b" ":
                value = value[1:]
            if name == b"data":
                self._data.append(value)
            elif name == b"event":
                self._event = value.decode("utf-8", "replace")
        return events

    def close(self) -> list[ServerSentEvent]:
        """At the end of the body: whatever is buffered, taken as complete. (The spec drops an
        event that lacks its closing blank line; a model stream's last chunk is worth more
        than that rule, and completeness is judged by the stream's own end marker.)"""
        return self.feed(b"\n\n")
