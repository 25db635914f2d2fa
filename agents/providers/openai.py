"""``kind = "openai"``: Chat Completions on the official ``openai`` SDK.

Covers OpenAI itself and every OpenAI-compatible server reached through ``base_url``
(Ollama, vLLM, llama.cpp, Gemini's and Volcengine Ark's compatible endpoints).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator, Mapping
from contextlib import aclosing
from dataclasses import dataclass, field
from typing import Any, ClassVar

from openai import AsyncOpenAI, DefaultAioHttpClient

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
from .errors import map_openai_errors, stream_error

logger = logging.getLogger(__name__)

_STOP: dict[str, StopReason] = {
    "stop": "end",
    "tool_calls": "tool_use",
    "function_call": "tool_use",
    "length": "max_tokens",
}


class OpenAIProvider(SDKProvider):
    """A Chat Completions endpoint. Constructed as ``OpenAIProvider(name, config)``."""

    manifest: ClassVar[Manifest] = Manifest(
        id="openai",
        name="OpenAI",
        description="OpenAI Chat Completions, and any OpenAI-compatible server (base_url): streaming, tool calls",
        provides=("provider:openai",),
        config=ProviderConfig,
        permissions=("network",),
        secrets=("api_key",),
    )
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

    async def _probe_once(self) -> tuple[str, str]:
        """``GET /models``: proves the key and the URL without spending tokens; a model the
        server does not list is a warning (some compatible servers list none)."""
        with map_openai_errors(self.name):
            page = await self._client.models.list()
        ids = {m.id for m in page.data}
        if self.model in ids:
            return "ok", f"{len(ids)} model(s); {self.model!r} listed"
        return "WARNING", f"{len(ids)} model(s), but not {self.model!r}"

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
            usage=_usage(result.usage.model_dump() if result.usage is not None else None),
            model=result.model or params["model"],
        )

    async def _stream_once(self, request: ModelRequest) -> AsyncGenerator[StreamEvent, None]:
        params = self._params(request)
        params["stream"] = True
        params["stream_options"] = {"include_usage": True}
        logger.debug("%s: streaming request (model %s)", self.name, params["model"])
        with map_openai_errors(self.name):
            response = await self._open_stream("/chat/completions", params)
        relay = self._relay(response, _Assembly(self.name, params["model"]), map_openai_errors)
        async with aclosing(relay):  # closed with us: it closes the HTTP response
            async for event in relay:
                yield event


@dataclass(slots=True)
class _PartialCall:
    id: str = ""
    name: str = ""
    arguments: list[str] = field(default_factory=list)


@dataclass(slots=True)
class _Assembly:
    """Collects a streamed completion from its chunks: text, tool calls split across chunks,
    the finish reason, and usage (a last chunk with no choices, sent before ``[DONE]``)."""

    provider: str
    model: str
    text: list[str] = field(default_factory=list)
    calls: dict[int, _PartialCall] = field(default_factory=dict)
    finish: str | None = None
    usage: Usage = field(default_factory=Usage)
    done: bool = False

    @property
    def finished(self) -> bool:
        # Some compatible servers end with a finish reason and no ``[DONE]``.
        return self.done or self.finish is not None

    def add(self, event: ServerSentEvent) -> str:
        if self.done:
            return ""
        if event.data.startswith(b"[DONE]"):
            self.done = True
            return ""
        chunk = event_json(self.provider, event)
        if not isinstance(chunk, dict):
            return ""
        if chunk.get("error"):
            raise stream_error(self.provider, chunk["error"])
        if chunk.get("model"):
            self.model = chunk["model"]
        if chunk.get("usage"):
            self.usage = _usage(chunk["usage"])
        choices = chunk.get("choices")
        if not choices:
            return ""
        choice = choices[0]
        if choice.get("finish_reason"):
            self.finish = choice["finish_reason"]
        delta = choice.get("delta") or {}
        for delta_call in delta.get("tool_calls") or ():
            index = delta_call.get("index")
            call = self.calls.setdefault(len(self.calls) if index is None else index, _PartialCall())
            if delta_call.get("id"):
                call.id = delta_call["id"]
            function = delta_call.get("function") or {}
            if function.get("name"):
                call.name += function["name"]
            if function.get("arguments"):
                call.arguments.append(function["arguments"])
        text: str = delta.get("content") or ""
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


def _usage(usage: Mapping[str, Any] | None) -> Usage:
    """From the wire's (or the SDK model's dumped) ``usage`` object."""
    if not usage:
        return Usage()
    details = usage.get("prompt_tokens_details") or {}
    return Usage(
        input_tokens=usage.get("prompt_tokens") or 0,
        output_tokens=usage.get("completion_tokens") or 0,
        cache_read_tokens=details.get("cached_tokens") or 0,
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
