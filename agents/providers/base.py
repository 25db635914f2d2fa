"""One provider-neutral request/response model for every vendor.

The loop speaks only these types; ``openai.py`` and ``anthropic.py`` translate them to and
from their SDK's wire format. Errors are ``agents.providers.errors`` types, never SDK ones.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from hub.agent import Usage
from hub.errors import ProviderError


@dataclass(frozen=True, slots=True, kw_only=True)
class ToolCall:
    id: str
    name: str
    arguments: str
    """The raw JSON text the model produced (may be malformed: the loop reports that to the model)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ToolResult:
    call_id: str
    name: str
    content: str
    is_error: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class UserMessage:
    text: str
    role: Literal["user"] = "user"


@dataclass(frozen=True, slots=True, kw_only=True)
class AssistantMessage:
    text: str = ""
    tool_calls: tuple[ToolCall, ...] = ()
    role: Literal["assistant"] = "assistant"


@dataclass(frozen=True, slots=True, kw_only=True)
class ToolResultsMessage:
    results: tuple[ToolResult, ...]
    role: Literal["tool"] = "tool"


ChatMessage = UserMessage | AssistantMessage | ToolResultsMessage


@dataclass(frozen=True, slots=True, kw_only=True)
class ToolSpec:
    name: str
    description: str
    parameters: dict[str, Any]
    """JSON schema of the arguments object."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ModelRequest:
    system: str
    messages: Sequence[ChatMessage]
    tools: Sequence[ToolSpec] = ()
    model: str | None = None
    """Overrides the provider's configured model for this request."""
    max_tokens: int = 4096
    temperature: float | None = None


StopReason = Literal["end", "tool_use", "max_tokens", "other"]


@dataclass(frozen=True, slots=True, kw_only=True)
class ModelResponse:
    text: str = ""
    tool_calls: tuple[ToolCall, ...] = ()
    stop_reason: StopReason = "end"
    usage: Usage = field(default_factory=Usage)
    model: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class TextDelta:
    text: str
    kind: Literal["text"] = "text"


@dataclass(frozen=True, slots=True, kw_only=True)
class Finished:
    """The last event of every stream: the assembled response."""

    response: ModelResponse
    kind: Literal["finished"] = "finished"


@dataclass(frozen=True, slots=True, kw_only=True)
class Restarted:
    """The stream failed part-way and starts over: drop the text it yielded so far.

    Yielded before any back-off wait or new request, so a consumer that has already shown
    part of the answer refuses by closing the stream (and reports ``error``).
    """

    error: ProviderError
    """Why the stream failed."""
    kind: Literal["restarted"] = "restarted"


StreamEvent = TextDelta | Restarted | Finished


class Provider(Protocol):
    """A configured model endpoint. Owns and closes its SDK client."""

    name: str
    model: str

    async def complete(self, request: ModelRequest) -> ModelResponse: ...

    def stream(self, request: ModelRequest) -> AsyncIterator[StreamEvent]:
        """Yield text deltas as they arrive, then one ``Finished``.

        A stream that fails after yielding text may start over (retry or fallback): it yields
        ``Restarted`` first. Raises ``ProviderError`` subclasses once it gives up; a broken
        connection is ``StreamInterrupted``, an error the provider reported is typed by it."""
        ...

    async def aclose(self) -> None: ...


@asynccontextmanager
async def closing(events: AsyncIterator[StreamEvent]) -> AsyncIterator[AsyncIterator[StreamEvent]]:
    """Close a provider's stream (its HTTP response) however the caller leaves it: a caller
    that stops early, at a ``Restarted`` it refuses or on cancellation, must not leave the
    request open until the garbage collector finds it."""
    try:
        yield events
    finally:
        if isinstance(events, AsyncGenerator):
            await events.aclose()
