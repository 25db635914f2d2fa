"""The OpenAI chat-completions wire format, no I/O: the request's fields, errors, answer shapes.

Only what ``channels.openai_api`` serves: a request's ``messages`` become the run's history and
its new message; answers are ``chat.completion`` objects or ``chat.completion.chunk`` events.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, get_args

import orjson
from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from hub.agent import HistoryItem, Usage
from hub.messages import Outbound

# The agent's history vocabulary (agents/history.py): user and assistant turns as plain text.
USER, ASSISTANT = "user", "assistant"

ErrorType = Literal["invalid_request_error", "authentication_error", "rate_limit_error", "api_error", "server_error"]
_ERROR_TYPES: dict[str, ErrorType] = {t: t for t in get_args(ErrorType)}


class ApiError(Exception):
    """An answer in OpenAI's error shape: ``{"error": {"message", "type", "code", "param"}}``."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: ErrorType = "invalid_request_error",
        code: str,
        param: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type
        self.code = code
        self.param = param

    def body(self) -> dict[str, object]:
        return {"error": {"message": self.message, "type": self.type, "code": self.code, "param": self.param}}

    def response(self, headers: dict[str, str] | None = None) -> web.Response:
        return web.Response(
            status=self.status, body=orjson.dumps(self.body()), content_type="application/json", headers=headers
        )


def stored_error(error: ApiError) -> dict[str, object]:
    """An error kept as an ``Idempotency-Key``'s answer, so a retry gets the same error."""
    return {"status": error.status, **error.body()}


def replayed_error(answer: dict[str, object]) -> ApiError | None:
    """The error a stored answer holds (``stored_error``); None for a completion."""
    error, status = answer.get("error"), answer.get("status")
    if not isinstance(error, dict) or not isinstance(status, int):
        return None
    kind = _ERROR_TYPES.get(str(error.get("type")), "api_error")
    return ApiError(status, str(error.get("message")), type=kind, code=str(error.get("code")))


def bad_field(param: str, message: str) -> ApiError:
    return ApiError(400, f"{param}: {message}", code="invalid_value", param=param)


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)
    include_usage: bool = False


class Message(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)
    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[dict[str, Any]] | None = None


class ChatRequest(BaseModel):
    """The fields read; others OpenAI defines (temperature, top_p …) are accepted and ignored:
    the hub's agent sets its own."""

    model_config = ConfigDict(extra="ignore", frozen=True)
    model: str
    messages: list[Message] = Field(min_length=1)
    stream: bool = False
    stream_options: StreamOptions | None = None
    n: int = 1
    tools: list[dict[str, Any]] | None = None
    functions: list[dict[str, Any]] | None = None
    mode: Literal["auto", "react", "batch", "chain", "plan"] | None = None
    """AutoHands' own field: the workflow mode of this request's run (as ``/mode`` in a chat)."""


def parse_request(raw: bytes) -> ChatRequest:
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ApiError(400, f"The body is not valid JSON ({exc}).", code="invalid_json") from None
    if not isinstance(data, dict):
        raise ApiError(400, "The body must be a JSON object.", code="invalid_json")
    try:
        req = ChatRequest.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        param = ".".join(str(p) for p in first["loc"]) or "body"
        raise bad_field(param, first["msg"]) from None
    if req.tools or req.functions:
        param = "tools" if req.tools else "functions"
        raise bad_field(
            param,
            "client-side tools are not supported: the agent runs its own tools on the hub "
            "(see docs/API.md). Send the request without tools.",
        )
    if req.n != 1:
        raise bad_field("n", "only n = 1 is supported")
    return req


def _text(message: Message, index: int) -> str:
    content = message.content
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    parts = []
    for j, part in enumerate(content):
        if part.get("type") != "text" or not isinstance(part.get("text"), str):
            raise bad_field(f"messages.{index}.content.{j}", "only text parts are supported")
        parts.append(part["text"])
    return "\n".join(parts)


def split_messages(messages: Sequence[Message]) -> tuple[list[HistoryItem], str]:
    """The history before the last message, and the last message's text (a user's).

    System and developer messages reach the agent as the client's instructions, in a user
    turn (the agent keeps its own system prompt)."""
    last = messages[-1]
    if last.role != "user":
        raise bad_field(f"messages.{len(messages) - 1}.role", "the last message must be the user's")
    history: list[HistoryItem] = []
    for i, m in enumerate(messages[:-1]):
        text = _text(m, i)
        if m.role == "tool":
            raise bad_field(f"messages.{i}.role", "tool messages are not supported (client tools are not)")
        if m.role == "assistant":
            history.append(HistoryItem(kind=ASSISTANT, data={"text": text, "tool_calls": []}))
        elif m.role == "user":
            history.append(HistoryItem(kind=USER, data={"text": text}))
        else:
            history.append(HistoryItem(kind=USER, data={"text": f"[Instructions from the API client]\n{text}"}))
    new = _text(last, len(messages) - 1)
    if not new.strip():
        raise bad_field(f"messages.{len(messages) - 1}.content", "the last message is empty")
    return history, new


@dataclass(slots=True)
class Assembler:
    """The run's outbounds → the answer's text, and the piece each adds (a stream delta).

    Partials carry their stream's text so far; the final of a stream finishes it. Tool-call
    lines (plain partials) and questions (buttons) are not the answer."""

    text: str = ""
    _stream: str | None = None
    _shown: str = ""

    def feed(self, out: Outbound) -> str:
        if out.typing or out.buttons or (not out.final and out.format == "plain"):
            return ""
        if out.stream is None or out.stream != self._stream:
            sep = "\n\n" if self.text else ""
            self._stream, self._shown = out.stream, ""
            self.text += sep
            delta = sep
        else:
            delta = ""
        if out.text.startswith(self._shown):
            piece = out.text[len(self._shown) :]
            self.text += piece
            self._shown = out.text
            delta += piece
        if out.final:
            self._stream = None
        return delta


def usage_body(usage: Sequence[tuple[str, str, Usage]]) -> dict[str, int]:
    prompt = sum(u.input_tokens for _, _, u in usage)
    completion = sum(u.output_tokens for _, _, u in usage)
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def completion(cid: str, model: str, text: str, usage: dict[str, int]) -> dict[str, object]:
    return {
        "id": cid,
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": text, "refusal": None},
                "finish_reason": "stop",
                "logprobs": None,
            }
        ],
        "usage": usage,
    }


def chunk(cid: str, model: str, created: int, delta: dict[str, str], finish: str | None = None) -> bytes:
    body = {
        "id": cid,
        "object": "chat.completion.chunk",
        "created": created,
        "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}],
    }
    return b"data: " + orjson.dumps(body) + b"\n\n"


def usage_chunk(cid: str, model: str, created: int, usage: dict[str, int]) -> bytes:
    body = {"id": cid, "object": "chat.completion.chunk", "created": created, "model": model, "choices": []}
    body["usage"] = usage
    return b"data: " + orjson.dumps(body) + b"\n\n"


def error_event(error: ApiError) -> bytes:
    return b"data: " + orjson.dumps(error.body()) + b"\n\n"


DONE = b"data: [DONE]\n\n"
