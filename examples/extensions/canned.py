"""A provider extension: a "model" that answers from a table of canned replies, with no network
(docs/EXTENSION_GUIDE.md, "Writing a provider"). A real provider wraps a vendor's SDK the same
way: ``complete`` for one answer, ``stream`` for text as it arrives, ``aclose`` for its client.

It answers the last user message with the first reply whose key occurs in it, else with
``fallback``; a request that offers the ``now`` tool and asks for the time gets a tool call
first, to show how a provider hands tool calls to the agent.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import ClassVar

from agents.providers.base import (
    Finished,
    ModelRequest,
    ModelResponse,
    StreamEvent,
    TextDelta,
    ToolCall,
    ToolResultsMessage,
    UserMessage,
)
from agents.providers.config import ProviderConfig
from hub.agent import Usage
from hub.extensions import Manifest

REPLIES = {"hello": "Hello! I am a canned model.", "weather": "I cannot see outside, but it is always sunny here."}


class CannedProvider:
    """Built as ``CannedProvider(name, config)``, like every ``autohands.providers`` class."""

    manifest: ClassVar[Manifest] = Manifest(
        id="canned",
        name="Canned replies",
        version="1.0.0",
        description="Answers from a table of canned replies, offline (an example provider).",
        author="AutoHands examples",
        provides=("provider:canned",),
        config=ProviderConfig,
    )
    fallback = "I only know a few canned answers."

    def __init__(self, name: str, config: ProviderConfig) -> None:
        self.name = name
        self.model = config.model

    async def complete(self, request: ModelRequest) -> ModelResponse:
        last = request.messages[-1] if request.messages else None
        if isinstance(last, ToolResultsMessage):
            return self._response(f"The tool said: {last.results[0].content}")
        text = last.text.lower() if isinstance(last, UserMessage) else ""
        if "time" in text and any(t.name == "now" for t in request.tools):
            call = ToolCall(id="canned-1", name="now", arguments="{}")
            return ModelResponse(tool_calls=(call,), stop_reason="tool_use", model=self.model)
        reply = next((answer for key, answer in REPLIES.items() if key in text), self.fallback)
        return self._response(reply)

    async def stream(self, request: ModelRequest) -> AsyncIterator[StreamEvent]:
        response = await self.complete(request)
        for i, word in enumerate(response.text.split(" ")):  # a real SDK yields what the server sends
            yield TextDelta(text=(" " if i else "") + word)
        yield Finished(response=response)

    async def aclose(self) -> None:
        """Nothing to close: a provider on an SDK closes its client here."""

    def _response(self, text: str) -> ModelResponse:
        return ModelResponse(text=text, usage=Usage(input_tokens=1, output_tokens=len(text.split())), model=self.model)


manifest = CannedProvider.manifest
entry_points = {"autohands.providers": {"canned": CannedProvider}}
