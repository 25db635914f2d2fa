"""The WebSocket protocol of the web chat: the frames a client sends, parsed and checked, and
the frames the server sends, built in one place (docs/API.md, "WebSocket", is their reference)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from hub.messages import Outbound

__all__ = [
    "ID_PATTERN",
    "JSON",
    "Answer",
    "ClientFrame",
    "Conversations",
    "Frame",
    "Message",
    "ProtocolError",
    "Resume",
    "client_id_of",
    "error",
    "parse",
    "reply_frame",
]

JSON = str | int | float | bool | None | list["JSON"] | dict[str, "JSON"]
Frame = dict[str, JSON]
"""One server frame, as it is sent (JSON text)."""

ID_PATTERN = r"^[A-Za-z0-9_.-]{1,64}$"
"""Conversation and client message ids: short, and safe inside the store's keys."""

_Id = Annotated[str, Field(pattern=ID_PATTERN)]
_BUTTON = Annotated[str, Field(min_length=1, max_length=200)]


class _Frame(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class Message(_Frame):
    """``{"type": "message", "id", "conversation", "text"}``: the person wrote ``text``."""

    type: Literal["message"]
    id: _Id
    conversation: _Id
    text: Annotated[str, Field(min_length=1)]


class Answer(_Frame):
    """``{"type": "answer", "question", "choice"}``: a button of a question was pressed."""

    type: Literal["answer"]
    question: _BUTTON
    choice: _BUTTON
    conversation: _Id | None = None


class Resume(_Frame):
    """``{"type": "resume", "conversation", "after"}``: send what was kept after ``after``."""

    type: Literal["resume"]
    conversation: _Id
    after: Annotated[int, Field(ge=0)] = 0


class Conversations(_Frame):
    """``{"type": "conversations"}``: list the caller's conversations."""

    type: Literal["conversations"]


ClientFrame = Annotated[Message | Answer | Resume | Conversations, Field(discriminator="type")]
_CLIENT: TypeAdapter[Message | Answer | Resume | Conversations] = TypeAdapter(ClientFrame)


class ProtocolError(Exception):
    """A frame the server cannot take; its text is what the client is told (one line)."""

    def __init__(self, code: str, message: str, ref: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.ref = ref


def parse(text: str) -> Message | Answer | Resume | Conversations:
    """One client frame.

    Raises:
        ProtocolError: not JSON, an unknown ``type``, or a field missing or malformed (named).
    """
    try:
        return _CLIENT.validate_json(text)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"][1:]) or "frame"  # [0] is the frame's type
        if first["type"] == "json_invalid":
            raise ProtocolError("bad_frame", "a frame must be a JSON object") from None
        if first["type"] in ("union_tag_invalid", "union_tag_not_found"):
            raise ProtocolError(
                "bad_frame", 'unknown frame type; use "message", "answer", "resume" or "conversations"'
            ) from None
        if first["type"] == "string_pattern_mismatch":
            raise ProtocolError("bad_frame", f"{where}: use 1 to 64 of the characters A-Z a-z 0-9 _ . -") from None
        raise ProtocolError("bad_frame", f"{where}: {first['msg']}") from None


def error(code: str, message: str, ref: str | None = None) -> Frame:
    frame: Frame = {"type": "error", "code": code, "message": message}
    if ref is not None:
        frame["id"] = ref
    return frame


def client_id_of(platform_id: str | None) -> str | None:
    """The client's message id an outbound answers (its inbound's platform id ends with it)."""
    return platform_id.rsplit("/", 1)[-1] if platform_id else None


def reply_frame(msg: Outbound, conversation: str, at: datetime) -> Frame:
    """A final outbound as a ``message`` (or a ``question``, when it has buttons) without its
    server ``id``, which the transcript assigns."""
    frame: Frame = {
        "type": "question" if msg.buttons else "message",
        "conversation": conversation,
        "role": "assistant",
        "ref": msg.id,
        "text": msg.text,
        "format": msg.format,
        "stream": msg.stream,
        "edit_of": msg.edit_of,
        "reply_to": client_id_of(msg.reply_to_platform_id),
        "at": at.isoformat(),
    }
    if msg.buttons:
        frame["question"] = msg.id
        frame["choices"] = [{"id": b.id, "label": b.label, "style": b.style} for b in msg.buttons]
    return frame
