"""``kind = "anthropic"``: the Messages API on the official ``anthropic`` SDK.

The tool definitions and the system prompt are the stable prefix of every request of a
conversation, so both carry ``cache_control`` (prompt caching: later turns read that prefix
from the cache at a tenth of the price).
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncGenerator, Mapping
from contextlib import aclosing
from dataclasses import dataclass, field
from typing import Any, ClassVar, assert_never

from anthropic import AsyncAnthropic, DefaultAioHttpClient

from hub.agent import Usage
from hub.extensions import Manifest

from ._sdk import SDKProvider, event_json
from ._sse import ServerSentEvent
from .base import (
    AssistantMessage,
    ModelRequest,
    ModelResponse,
    StopReason,
    StreamEvent,
    ToolCall,
    ToolResultsMessage,
    UserMessage,
)
from .config import ProviderConfig
from .errors import map_anthropic_errors, stream_error

logger = logging.getLogger(__name__)

_STOP: dict[str, StopReason] = {
    "end_turn": "end",
    "stop_sequence": "end",
    "tool_use": "tool_use",
    "max_tokens": "max_tokens",
}
_CACHE = {"type": "ephemeral"}


class AnthropicProvider(SDKProvider):
    """A Messages API endpoint. Constructed as ``AnthropicProvider(name, config)``."""

    manifest: ClassVar[Manifest] = Manifest(
        id="anthropic",
        name="Anthropic",
        description="Anthropic Messages API (Claude): streaming, tool use",
        provides=("provider:anthropic",),
        config=ProviderConfig,
        permissions=("network",),
        secrets=("api_key",),
    )
    client_class = AsyncAnthropic
    http_client_class = DefaultAioHttpClient

    def _params(self, request: ModelRequest) -> dict[str, Any]:
        params: dict[str, Any] = {
            "model": request.model or self.model,
            "max_tokens": min(request.max_tokens, self.config.max_output_tokens),
            "messages": to_anthropic_messages(request),
        }
        if request.system:
            params["system"] = [{"type": "text", "text": request.system, "cache_control": _CACHE}]
        if request.tools:
            tools: list[dict[str, Any]] = [
                {"name": t.name, "description": t.description, "input_schema": t.parameters} for t in request.tools
            ]
            tools[-1]["cache_control"] = _CACHE  # a breakpoint on the last tool caches them all
            params["tools"] = tools
        if request.temperature is not None:
            params["temperature"] = request.temperature
        return params

    async def _probe_once(self) -> tuple[str, str]:
        """A one-token message: proves the key, the URL and the model in one request."""
        with map_anthropic_errors(self.name):
            message = await self._client.messages.create(
                model=self.model, max_tokens=1, messages=[{"role": "user", "content": "ping"}]
            )
        return "ok", f"model {message.model!r} answered"

    async def _complete_once(self, request: ModelRequest) -> ModelResponse:
        params = self._params(request)
        logger.debug("%s: message request (model %s)", self.name, params["model"])
        with map_anthropic_errors(self.name):
            message = await self._client.messages.create(**params)
        text, calls = [], []
        for block in message.content:
            if block.type == "text":
                text.append(block.text)
            elif block.type == "tool_use":
                calls.append(ToolCall(id=block.id, name=block.name, arguments=json.dumps(block.input)))
        return ModelResponse(
            text="".join(text),
            tool_calls=tuple(calls),
            stop_reason=_STOP.get(message.stop_reason or "", "other"),
            usage=_usage(message.usage.model_dump()),
            model=message.model or params["model"],
        )

    async def _stream_once(self, request: ModelRequest) -> AsyncGenerator[StreamEvent, None]:
        params = self._params(request)
        params["stream"] = True
        logger.debug("%s: streaming message request (model %s)", self.name, params["model"])
        with map_anthropic_errors(self.name):
            response = await self._open_stream("/v1/messages", params)
        relay = self._relay(response, _Assembly(self.name, params["model"]), map_anthropic_errors)
        async with aclosing(relay):  # closed with us: it closes the HTTP response
            async for event in relay:
                yield event


@dataclass(slots=True)
class _Block:
    kind: str
    id: str = ""
    name: str = ""
    parts: list[str] = field(default_factory=list)


@dataclass(slots=True)
class _Assembly:
    """Collects the stream's content blocks by index, the stop reason and usage."""

    provider: str
    model: str
    blocks: dict[int, _Block] = field(default_factory=dict)
    stop: str | None = None
    start_usage: Mapping[str, Any] | None = None
    output_tokens: int = 0
    finished: bool = False
    """``message_stop`` arrived."""

    def add(self, event: ServerSentEvent) -> str:
        if self.finished or event.event == "ping":
            return ""
        data = event_json(self.provider, event)
        if event.event == "error":
            raise stream_error(self.provider, data)
        if not isinstance(data, dict):
            return ""
        match event.event or data.get("type"):
            case "message_start":
                message = data.get("message") or {}
                self.model = message.get("model") or self.model
                self.start_usage = message.get("usage") or {}
                self.output_tokens = self.start_usage.get("output_tokens") or 0
            case "content_block_start":
                block = data.get("content_block") or {}
                kind = block.get("type", "text")
                index = data.get("index", len(self.blocks))
                if kind == "tool_use":
                    self.blocks[index] = _Block(kind, id=block.get("id", ""), name=block.get("name", ""))
                else:
                    self.blocks[index] = _Block(kind)
                    if kind == "text" and block.get("text"):
                        self.blocks[index].parts.append(block["text"])
                        return str(block["text"])
            case "content_block_delta":
                delta = data.get("delta") or {}
                target = self.blocks.setdefault(data.get("index", max(self.blocks, default=0)), _Block("text"))
                if delta.get("type") == "text_delta":
                    target.parts.append(delta["text"])
                    return str(delta["text"])
                if delta.get("type") == "input_json_delta":
                    target.parts.append(delta["partial_json"])
            case "message_delta":
                self.stop = (data.get("delta") or {}).get("stop_reason") or self.stop
                self.output_tokens = (data.get("usage") or {}).get("output_tokens") or self.output_tokens
            case "message_stop":
                self.finished = True
            case _:  # content_block_stop and event types newer than this code
                pass
        return ""

    def response(self) -> ModelResponse:
        text = "".join("".join(b.parts) for _, b in sorted(self.blocks.items()) if b.kind == "text")
        calls = tuple(
            ToolCall(id=b.id, name=b.name, arguments="".join(b.parts) or "{}")
            for _, b in sorted(self.blocks.items())
            if b.kind == "tool_use"
        )
        usage = _usage(self.start_usage, output_tokens=self.output_tokens)
        return ModelResponse(
            text=text,
            tool_calls=calls,
            stop_reason=_STOP.get(self.stop or "", "other"),
            usage=usage,
            model=self.model,
        )


def _usage(usage: Mapping[str, Any] | None, *, output_tokens: int | None = None) -> Usage:
    """Anthropic counts cached input apart; ``Usage.input_tokens`` is the whole prompt."""
    if not usage:
        return Usage(output_tokens=output_tokens or 0)
    write = usage.get("cache_creation_input_tokens") or 0
    read = usage.get("cache_read_input_tokens") or 0
    return Usage(
        input_tokens=(usage.get("input_tokens") or 0) + write + read,
        output_tokens=(usage.get("output_tokens") or 0) if output_tokens is None else output_tokens,
        cache_read_tokens=read,
        cache_write_tokens=write,
    )


def _tool_input(arguments: str) -> dict[str, Any]:
    # The API wants an object; a malformed call from an earlier turn is replayed as {} (its
    # tool result already told the model what was wrong).
    try:
        value = json.loads(arguments) if arguments else {}
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def to_anthropic_messages(request: ModelRequest) -> list[dict[str, Any]]:
    """The conversation as Messages API turns; consecutive same-role turns are merged."""
    out: list[dict[str, Any]] = []

    def put(role: str, blocks: list[dict[str, Any]]) -> None:
        if not blocks:
            return
        if out and out[-1]["role"] == role:
            out[-1]["content"].extend(blocks)
        else:
            out.append({"role": role, "content": blocks})

    for message in request.messages:
        if isinstance(message, UserMessage):
            put("user", [{"type": "text", "text": message.text}])
        elif isinstance(message, AssistantMessage):
            blocks: list[dict[str, Any]] = [{"type": "text", "text": message.text}] if message.text else []
            blocks += [
                {"type": "tool_use", "id": c.id, "name": c.name, "input": _tool_input(c.arguments)}
                for c in message.tool_calls
            ]
            put("assistant", blocks)
        elif isinstance(message, ToolResultsMessage):
            put(
                "user",
                [
                    {
                        "type": "tool_result",
                        "tool_use_id": r.call_id,
                        "content": r.content,
                        "is_error": r.is_error,
                    }
                    for r in message.results
                ],
            )
        else:
            assert_never(message)
    return out
