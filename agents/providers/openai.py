"""``kind = "openai"``: Chat Completions on the official ``openai`` SDK.

Covers OpenAI itself and every OpenAI-compatible server reached through ``base_url``
(Ollama, vLLM, llama.cpp, Gemini's and Volcengine Ark's compatible endpoints).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from openai import AsyncOpenAI, DefaultAioHttpClient

from hub.agent import Usage

from ._sdk import SDKProvider
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
from .errors import map_openai_errors

logger = logging.getLogger(__name__)

_STOP: dict[str, StopReason] = {
    "stop": "end",
    "tool_calls": "tool_use",
    "function_call": "tool_use",
    "length": "max_tokens",
}


class OpenAIProvider(SDKProvider):
    """A Chat Completions endpoint. Constructed as ``OpenAIProvider(name, config)``."""

    client_class = AsyncOpenAI
    http_client_class = DefaultAioHttpClient

    def _params(self, request: ModelRequest) -> dict[str, Any]:
        params: dict[str, Any] = {
            "model": request.model or self.model,
            "messages": to_openai_messages(request),
        }
        max_tokens = min(request.max_tokens, self.config.max_output_tokens)
        # OpenAI itself wants max_completion_tokens (o-series refuse max_tokens); compatible
        # servers widely understand only max_tokens.
        params["max_completion_tokens" if self.config.base_url is None else "max_tokens"] = max_tokens
        if request.tools:
            params["tools"] = [
                {
                    "type": "function",
                    "function": {"name": t.name, "description": t.description, "parameters": t.parameters},
                }
                for t in request.tools
            ]
        if request.temperature is not None:
            params["temperature"] = request.temperature
        return params

    @staticmethod
    def _wire(params: dict[str, Any]) -> dict[str, Any]:
        """Hand our already wire-shaped body to the SDK untouched.

        The SDK walks every parameter against its TypedDicts, every tool's JSON schema included
        (about a fifth of the CPU of a request with the built-in tool set); ``_params`` builds
        the wire format itself, so the body goes in ``extra_body``, which the SDK merges as is.
        """
        body = dict(params)
        return {"model": body.pop("model"), "messages": [], "extra_body": body}

    async def _complete_once(self, request: ModelRequest) -> ModelResponse:
        params = self._params(request)
        logger.debug("%s: completion request (model %s)", self.name, params["model"])
        with map_openai_errors(self.name):
            result = await self._client.chat.completions.create(**self._wire(params))
        choice = result.choices[0] if result.choices else None
        calls: tuple[ToolCall, ...] = ()
        if choice is not None and choice.message.tool_calls:
            calls = tuple(
                ToolCall(id=c.id, name=c.function.name, arguments=c.function.arguments or "{}")
                for c in choice.message.tool_calls
                if c.type == "function"
            )
        return ModelResponse(
            text=(choice.message.content or "") if choice is not None else "",
            tool_calls=calls,
            stop_reason=_STOP.get(choice.finish_reason if choice else "", "other"),
            usage=_usage(result.usage),
            model=result.model or params["model"],
        )

    async def _stream_once(self, request: ModelRequest) -> AsyncIterator[StreamEvent]:
        params = self._params(request)
        logger.debug("%s: streaming request (model %s)", self.name, params["model"])
        with map_openai_errors(self.name):
            stream = await self._client.chat.completions.create(
                **self._wire(params), stream=True, stream_options={"include_usage": True}
            )
        async for event in self._relay(stream, _Assembly(model=params["model"]), map_openai_errors):
            yield event


@dataclass(slots=True)
class _PartialCall:
    id: str = ""
    name: str = ""
    arguments: list[str] = field(default_factory=list)


@dataclass(slots=True)
class _Assembly:
    """Collects a streamed completion: text, tool calls split across chunks, usage."""

    model: str
    text: list[str] = field(default_factory=list)
    calls: dict[int, _PartialCall] = field(default_factory=dict)
    finish: str | None = None
    usage: Usage = field(default_factory=Usage)

    def add(self, chunk: Any) -> str:
        if chunk.model:
            self.model = chunk.model
        if chunk.usage is not None:
            self.usage = _usage(chunk.usage)
        if not chunk.choices:
            return ""
        choice = chunk.choices[0]
        if choice.finish_reason:
            self.finish = choice.finish_reason
        for delta_call in choice.delta.tool_calls or ():
            index = delta_call.index if delta_call.index is not None else len(self.calls)
            call = self.calls.setdefault(index, _PartialCall())
            if delta_call.id:
                call.id = delta_call.id
            if delta_call.function is not None:
                if delta_call.function.name:
                    call.name += delta_call.function.name
                if delta_call.function.arguments:
                    call.arguments.append(delta_call.function.arguments)
        text = choice.delta.content or ""
        if text:
            self.text.append(text)
        return text

    def response(self) -> ModelResponse:
        calls = tuple(
            ToolCall(id=c.id or f"call_{i}", name=c.name, arguments="".join(c.arguments) or "{}")
            for i, c in sorted(self.calls.items())
        )
        stop = _STOP.get(self.finish or "", "other")
        return ModelResponse(
            text="".join(self.text), tool_calls=calls, stop_reason=stop, usage=self.usage, model=self.model
        )


def _usage(usage: Any) -> Usage:
    if usage is None:
        return Usage()
    details = getattr(usage, "prompt_tokens_details", None)
    cached = getattr(details, "cached_tokens", None) or 0
    return Usage(
        input_tokens=usage.prompt_tokens or 0,
        output_tokens=usage.completion_tokens or 0,
        cache_read_tokens=cached,
    )


def to_openai_messages(request: ModelRequest) -> list[dict[str, Any]]:
    """The request's conversation in Chat Completions shape (system first)."""
    out: list[dict[str, Any]] = [{"role": "system", "content": request.system}] if request.system else []
    for message in request.messages:
        if isinstance(message, UserMessage):
            out.append({"role": "user", "content": message.text})
        elif isinstance(message, AssistantMessage):
            entry: dict[str, Any] = {"role": "assistant", "content": message.text or None}
            if message.tool_calls:
                entry["tool_calls"] = [
                    {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
                    for c in message.tool_calls
                ]
            out.append(entry)
        elif isinstance(message, ToolResultsMessage):
            # Chat Completions has no error flag on tool results; say it in the content.
            out.extend(
                {
                    "role": "tool",
                    "tool_call_id": r.call_id,
                    "content": f"ERROR: {r.content}" if r.is_error else r.content,
                }
                for r in message.results
            )
    return out
