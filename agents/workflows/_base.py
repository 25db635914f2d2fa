"""What a workflow mode sees of its run: ``Run``, implemented by ``agents.runtime``.

A mode decides the order of model calls and tool calls; the run owns everything they share:
the model call (streamed, under the run's deadline, the tool set read each turn), the tool
calls (every one through the run's ``ToolExecutor``: permission checks and approvals), the
history (remembered and checkpointed at each step boundary) and the final answer (through
``agents.intent.format_answer``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Protocol

from hub.agent import RunContext
from hub.messages import Outbound

from ..config import AgentConfig
from ..providers.base import ChatMessage, ModelResponse, ToolCall, ToolResult, ToolResultsMessage, ToolSpec

ResultSeen = Callable[[int, ToolResult], Awaitable[None]]
"""Told each call's result as it finishes: its index in the calls, and the result."""


class Run(Protocol):
    """One agent run as a workflow mode drives it."""

    @property
    def ctx(self) -> RunContext: ...
    @property
    def config(self) -> AgentConfig: ...
    @property
    def messages(self) -> list[ChatMessage]:
        """The conversation the model sees: history, the request, the steps so far."""
        ...

    @property
    def specs(self) -> tuple[ToolSpec, ...]:
        """The tools offered now (the intent's tool set; it may widen between calls)."""
        ...

    @property
    def stream_id(self) -> str | None:
        """The stream of the text the model is writing now (its final answer finishes it)."""
        ...

    def out(self, text: str, *, final: bool = True, stream: str | None = None) -> Outbound: ...

    def typing(self) -> Outbound: ...

    def call_model(self) -> AsyncIterator[Outbound | ModelResponse]:
        """One model call over ``messages`` with the tools: partial outbounds, then the response."""
        ...

    async def complete(self, system: str, messages: Sequence[ChatMessage]) -> str:
        """One quiet model call without tools (a plan, a step's question): its text."""
        ...

    async def add(self, message: ChatMessage, *, label: str) -> None:
        """Append ``message`` to the conversation and the history; a step boundary."""
        ...

    async def checkpoint(self, label: str) -> None:
        """A step boundary with nothing new to remember (a planning call)."""
        ...

    def text_shown(self) -> None:
        """The model's text before its tool calls was shown: the next text is a new message."""
        ...

    async def run_tools(
        self, calls: Sequence[ToolCall], *, limit: int | None = None, seen: ResultSeen | None = None
    ) -> ToolResultsMessage:
        """Authorize ``calls`` (one question at a time), then run them concurrently (at most
        ``limit`` at once; None: all), telling ``seen`` each result."""
        ...

    async def answer(self, text: str) -> Outbound:
        """The run's final outbound for the model's final ``text`` (formatted as asked)."""
        ...
