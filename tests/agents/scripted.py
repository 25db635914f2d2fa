"""An in-process scripted ``Provider`` for loop tests (à la openai-agents ``ScriptedModel``).

This implements our own ``agents.providers.base.Provider`` interface, not a vendor SDK: the
SDK paths are covered against the fake HTTP servers in ``tests/fakes``. Each model call pops
the next step; a call with no step left fails the test, and ``assert_done`` fails on steps
that were never requested.

    provider = ScriptedProvider().tool_calls(call("add", {"a": 1, "b": 2})).reply("3")
"""

from __future__ import annotations

import asyncio
import json
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from agents.providers.base import (
    Finished,
    ModelRequest,
    ModelResponse,
    StreamEvent,
    TextDelta,
    ToolCall,
)
from hub.agent import Usage
from hub.errors import ProviderError


def call(name: str, arguments: dict[str, Any] | str | None = None, *, id: str | None = None) -> ToolCall:
    """A tool call; a dict is sent as JSON, a string verbatim (so it may be malformed)."""
    args = arguments if isinstance(arguments, str) else json.dumps(arguments or {})
    return ToolCall(id=id or f"call_{name}_{abs(hash((name, args))) % 10_000}", name=name, arguments=args)


@dataclass(kw_only=True)
class Step:
    """One model call's answer."""

    text: str = ""
    calls: tuple[ToolCall, ...] = ()
    chunks: int = 3
    usage: Usage = field(default_factory=lambda: Usage(input_tokens=100, output_tokens=20))
    error: ProviderError | None = None
    """Raised instead of answering (before any event), or after ``fail_after_chunks`` chunks."""
    fail_after_chunks: int | None = None
    gate: asyncio.Event | None = None
    """The stream waits for this event before chunk ``gate_at`` (hang / cancellation tests)."""
    gate_at: int = 0
    started: asyncio.Event = field(default_factory=asyncio.Event)
    """Set when the call for this step arrives."""


class UnexpectedCall(AssertionError):
    pass


class ScriptedProvider:
    """A ``Provider`` answering from a queue of ``Step``s and logging every request."""

    def __init__(self, name: str = "scripted", model: str = "scripted-model") -> None:
        self.name = name
        self.model = model
        self.requests: list[ModelRequest] = []
        self.steps: deque[Step] = deque()
        self.closed = False

    def add(self, step: Step) -> ScriptedProvider:
        self.steps.append(step)
        return self

    def reply(self, text: str, *, chunks: int = 3, **kw: Any) -> ScriptedProvider:
        return self.add(Step(text=text, chunks=chunks, **kw))

    def tool_calls(self, *calls: ToolCall, text: str = "", **kw: Any) -> ScriptedProvider:
        return self.add(Step(text=text, calls=calls, **kw))

    def fail(self, error: ProviderError, **kw: Any) -> ScriptedProvider:
        return self.add(Step(error=error, **kw))

    def assert_done(self) -> None:
        if self.steps:
            raise AssertionError(f"{len(self.steps)} scripted step(s) never requested: {list(self.steps)}")

    def _next(self, request: ModelRequest) -> Step:
        self.requests.append(request)
        if not self.steps:
            raise UnexpectedCall(f"unexpected model call #{len(self.requests)} (the script is empty)")
        step = self.steps.popleft()
        step.started.set()
        return step

    def _response(self, step: Step, request: ModelRequest) -> ModelResponse:
        return ModelResponse(
            text=step.text,
            tool_calls=step.calls,
            stop_reason="tool_use" if step.calls else "end",
            usage=step.usage,
            model=request.model or self.model,
        )

    async def complete(self, request: ModelRequest) -> ModelResponse:
        step = self._next(request)
        if step.gate is not None:
            await step.gate.wait()
        if step.error is not None:
            raise step.error
        return self._response(step, request)

    async def stream(self, request: ModelRequest) -> AsyncIterator[StreamEvent]:
        step = self._next(request)
        if step.gate is not None and step.gate_at == 0:
            await step.gate.wait()
        if step.error is not None and step.fail_after_chunks is None:
            raise step.error
        for i, piece in enumerate(_split(step.text, step.chunks)):
            if step.gate is not None and i == step.gate_at and i:
                await step.gate.wait()
            if step.fail_after_chunks is not None and i >= step.fail_after_chunks:
                break
            await asyncio.sleep(0)  # a real stream yields to the loop between chunks
            yield TextDelta(text=piece)
        if step.error is not None:
            raise step.error
        yield Finished(response=self._response(step, request))

    async def aclose(self) -> None:
        self.closed = True


def _split(text: str, chunks: int) -> list[str]:
    if not text:
        return []
    n = max(1, min(chunks, len(text)))
    size, extra = divmod(len(text), n)
    out, pos = [], 0
    for i in range(n):
        end = pos + size + (1 if i < extra else 0)
        out.append(text[pos:end])
        pos = end
    return out
