"""A local Anthropic Messages API server: ``POST /v1/messages``, SSE streaming and plain.

Streams the real event sequence (``message_start``, ``content_block_start``, ``ping``,
``content_block_delta`` with ``text_delta`` / ``input_json_delta``, ``content_block_stop``,
``message_delta``, ``message_stop``), answers errors in Anthropic's JSON error shape (529
``overloaded_error`` included) and imitates prompt caching: the first request with a given
``cache_control``-marked prefix reports ``cache_creation_input_tokens``, later ones
``cache_read_input_tokens``. ``base_url`` is the server root, as ``AsyncAnthropic`` expects.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

from aiohttp import web

from .llm_script import (
    DropStep,
    ErrorStep,
    FakeLLMServer,
    LLMScript,
    ReplyStep,
    ScriptedCall,
    drop_connection,
    estimate_tokens,
    split_text,
)

_ERRORS: dict[int, tuple[str, str]] = {
    400: ("invalid_request_error", "Invalid request."),
    401: ("authentication_error", "invalid x-api-key"),
    403: ("permission_error", "Your API key does not have permission to use the specified resource."),
    404: ("not_found_error", "The requested resource could not be found."),
    413: ("request_too_large", "Request exceeds the maximum allowed number of bytes."),
    429: ("rate_limit_error", "Number of request tokens has exceeded your per-minute rate limit."),
    500: ("api_error", "Internal server error"),
    529: ("overloaded_error", "Overloaded"),
}


def error_response(step: ErrorStep) -> web.Response:
    etype, message = _ERRORS.get(step.status, ("api_error" if step.status >= 500 else "invalid_request_error", "Error"))
    request_id = f"req_{uuid.uuid4().hex[:24]}"
    headers = {"request-id": request_id}
    if step.retry_after is not None:
        headers["retry-after"] = str(step.retry_after)
    body = {
        "type": "error",
        "error": {"type": etype, "message": step.message or message},
        "request_id": request_id,
    }
    return web.json_response(body, status=step.status, headers=headers)


def _last_user_text(body: dict[str, Any]) -> tuple[str, bool]:
    messages = body.get("messages") or []
    if not messages:
        return "", False
    content = messages[-1].get("content")
    if isinstance(content, str):
        return content, False
    blocks = [b for b in content or [] if isinstance(b, dict)]
    results = [b for b in blocks if b.get("type") == "tool_result"]
    if results:
        inner = results[-1].get("content")
        if isinstance(inner, list):
            inner = "".join(b.get("text", "") for b in inner if isinstance(b, dict))
        return str(inner or ""), True
    return "".join(b.get("text", "") for b in blocks if b.get("type") == "text"), False


def _has_cache_control(value: Any) -> bool:
    if isinstance(value, dict):
        return "cache_control" in value or any(_has_cache_control(v) for v in value.values())
    if isinstance(value, list):
        return any(_has_cache_control(v) for v in value)
    return False


class FakeAnthropic(FakeLLMServer):
    def __init__(self, script: LLMScript | None = None, *, port: int = 0, host: str = "127.0.0.1"):
        super().__init__(script, port=port, host=host)
        self._cached_prefixes: set[str] = set()

    def _routes(self) -> list[web.RouteDef]:
        return [web.post("/v1/messages", self._messages)]

    async def _messages(self, request: web.Request) -> web.StreamResponse:
        logged, body = await self._log(request)
        key = self.script.api_key
        # Older SDKs send ``x-api-key``; anthropic 2.x sends ``Authorization: Bearer``.
        sent = request.headers.get("x-api-key") or request.headers.get("Authorization", "").removeprefix("Bearer ")
        if key is not None and sent != key:
            return error_response(ErrorStep(status=401))
        if (
            not isinstance(body, dict)
            or not body.get("messages")
            or not body.get("model")
            or not isinstance(body.get("max_tokens"), int)
        ):
            return error_response(ErrorStep(status=400, message="model, messages and max_tokens are required"))
        step = self.script.next_step(logged, *_last_user_text(body))
        if isinstance(step, ErrorStep):
            if step.mid_stream and body.get("stream"):
                return await _stream_error(request, body["model"], step)
            return error_response(step)
        usage = self._usage(body, logged.raw_size, step)
        if not body.get("stream"):
            return web.json_response(_message(body["model"], step, usage))
        return await _stream(request, body["model"], step, usage)

    def _usage(self, body: dict[str, Any], size: int, step: ReplyStep | DropStep) -> dict[str, Any]:
        """Split the estimated input into uncached, cache-written and cache-read tokens."""
        total = estimate_tokens(size)
        prefix = {"tools": body.get("tools"), "system": body.get("system")}
        write = read = 0
        if _has_cache_control(prefix):
            prefix_key = json.dumps(prefix, sort_keys=True)
            cached = estimate_tokens(len(prefix_key))
            if prefix_key in self._cached_prefixes:
                read = cached
            else:
                self._cached_prefixes.add(prefix_key)
                write = cached
        out = step.text + ("".join(c.arguments_json for c in step.calls) if isinstance(step, ReplyStep) else "")
        return {
            "input_tokens": max(0, total - write - read),
            "cache_creation_input_tokens": write,
            "cache_read_input_tokens": read,
            "output_tokens": estimate_tokens(out),
        }


def _stop_reason(step: ReplyStep) -> str:
    if step.stop == "max_tokens":
        return "max_tokens"
    return "tool_use" if step.calls else "end_turn"


def _tool_id(call: ScriptedCall) -> str:
    return call.id or f"toolu_{uuid.uuid4().hex[:24]}"


async def _stream(
    request: web.Request, model: str, step: ReplyStep | DropStep, usage: dict[str, Any]
) -> web.StreamResponse:
    resp = web.StreamResponse(
        headers={
            "Content-Type": "text/event-stream; charset=utf-8",
            "Cache-Control": "no-cache",
            "request-id": f"req_{uuid.uuid4().hex[:24]}",
        }
    )
    await resp.prepare(request)

    async def send(event: str, data: dict[str, Any]) -> None:
        await resp.write(f"event: {event}\ndata: {json.dumps({'type': event, **data})}\n\n".encode())

    if isinstance(step, ReplyStep) and step.first_token_delay:
        await asyncio.sleep(step.first_token_delay)
    start_usage = {**usage, "output_tokens": 1}
    await send(
        "message_start",
        {
            "message": {
                "id": f"msg_{uuid.uuid4().hex[:24]}",
                "type": "message",
                "role": "assistant",
                "content": [],
                "model": model,
                "stop_reason": None,
                "stop_sequence": None,
                "usage": start_usage,
            }
        },
    )
    if isinstance(step, DropStep):
        await send("content_block_start", {"index": 0, "content_block": {"type": "text", "text": ""}})
        for piece in split_text(step.text, step.chunks)[: step.after_chunks]:
            await send("content_block_delta", {"index": 0, "delta": {"type": "text_delta", "text": piece}})
        await drop_connection(request, resp, step)
        return resp
    index = 0
    if step.text:
        await send("content_block_start", {"index": 0, "content_block": {"type": "text", "text": ""}})
        await send("ping", {})
        for piece in split_text(step.text, step.chunks):
            await send("content_block_delta", {"index": 0, "delta": {"type": "text_delta", "text": piece}})
        await send("content_block_stop", {"index": 0})
        index = 1
    for call in step.calls:
        await send(
            "content_block_start",
            {
                "index": index,
                "content_block": {"type": "tool_use", "id": _tool_id(call), "name": call.name, "input": {}},
            },
        )
        await send("content_block_delta", {"index": index, "delta": {"type": "input_json_delta", "partial_json": ""}})
        for piece in split_text(call.arguments_json, step.chunks):
            await send(
                "content_block_delta",
                {"index": index, "delta": {"type": "input_json_delta", "partial_json": piece}},
            )
        await send("content_block_stop", {"index": index})
        index += 1
    await send(
        "message_delta",
        {
            "delta": {"stop_reason": _stop_reason(step), "stop_sequence": None},
            "usage": {"output_tokens": usage["output_tokens"]},
        },
    )
    await send("message_stop", {})
    await resp.write_eof()
    return resp


def _message(model: str, step: ReplyStep | DropStep, usage: dict[str, Any]) -> dict[str, Any]:
    if isinstance(step, DropStep):
        step = ReplyStep(text=step.text)
    content: list[dict[str, Any]] = [{"type": "text", "text": step.text}] if step.text else []
    for call in step.calls:
        try:
            args = json.loads(call.arguments_json)
        except ValueError:
            args = {}  # the real API always returns an object here
        content.append({"type": "tool_use", "id": _tool_id(call), "name": call.name, "input": args})
    return {
        "id": f"msg_{uuid.uuid4().hex[:24]}",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": _stop_reason(step),
        "stop_sequence": None,
        "usage": usage,
    }


async def _stream_error(request: web.Request, model: str, step: ErrorStep) -> web.StreamResponse:
    """A 200 stream that opens (with ``step.partial`` as text deltas), then reports the failure
    as an ``error`` event."""
    resp = web.StreamResponse(headers={"Content-Type": "text/event-stream; charset=utf-8"})
    await resp.prepare(request)
    usage = {"input_tokens": 1, "output_tokens": 1}
    start = {
        "type": "message_start",
        "message": {
            "id": f"msg_{uuid.uuid4().hex[:24]}",
            "type": "message",
            "role": "assistant",
            "content": [],
            "model": model,
            "stop_reason": None,
            "stop_sequence": None,
            "usage": usage,
        },
    }
    etype, message = _ERRORS.get(step.status, ("api_error", "Internal server error"))
    error = {"type": "error", "error": {"type": etype, "message": step.message or message}}
    await resp.write(f"event: message_start\ndata: {json.dumps(start)}\n\n".encode())
    if step.partial:
        block = {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}
        await resp.write(f"event: content_block_start\ndata: {json.dumps(block)}\n\n".encode())
    for piece in split_text(step.partial, 2):
        delta = {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": piece}}
        await resp.write(f"event: content_block_delta\ndata: {json.dumps(delta)}\n\n".encode())
    await resp.write(f"event: error\ndata: {json.dumps(error)}\n\n".encode())
    await resp.write_eof()
    return resp
