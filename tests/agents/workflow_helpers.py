"""Tools and an agent for the workflow-mode tests (tests/agents/test_workflows.py)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agents.config import AgentConfig
from agents.providers.base import Provider
from agents.runtime import LLMAgent, ResolvedModel, default_tool_context
from agents.tools.base import Risk, Tool, ToolRegistry
from agents.tools.decorator import tool
from hub.agent import HistoryItem, PauseRequested
from hub.errors import ToolFailed
from hub.messages import Outbound
from tests.agents.fake_run_context import FakeRunContext


@dataclass
class Bench:
    """What the test tools saw."""

    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    active: int = 0
    most: int = 0
    full: asyncio.Event = field(default_factory=asyncio.Event)
    flaky_failures: int = 0
    full_at: int = 4

    def tools(self) -> list[Tool]:
        bench = self

        @tool
        async def slow(key: str) -> str:
            """Fetch one record slowly.

            Args:
                key: the record.
            """
            bench.calls.append(("slow", {"key": key}))
            bench.active += 1
            bench.most = max(bench.most, bench.active)
            if bench.active >= bench.full_at:
                bench.full.set()
            try:
                async with asyncio.timeout(5):
                    await bench.full.wait()
            finally:
                bench.active -= 1
            return f"record {key}"

        @tool
        async def echo(text: str) -> str:
            """Say the text back.

            Args:
                text: what to say.
            """
            bench.calls.append(("echo", {"text": text}))
            return f"echo: {text}"

        @tool
        async def inventory(query: str) -> str:
            """Look up products as JSON.

            Args:
                query: what to look for.
            """
            bench.calls.append(("inventory", {"query": query}))
            return json.dumps({"items": [{"name": "widget"}, {"name": "gadget"}], "count": 2})

        @tool
        async def flaky(text: str) -> str:
            """Fails while ``flaky_failures`` is above zero.

            Args:
                text: anything.
            """
            bench.calls.append(("flaky", {"text": text}))
            if bench.flaky_failures:
                bench.flaky_failures -= 1
                raise ToolFailed("the service is busy")
            return f"flaky ok: {text}"

        @tool(risk=Risk.HIGH)
        async def deploy(target: str) -> str:
            """Deploy to a target.

            Args:
                target: where.
            """
            bench.calls.append(("deploy", {"target": target}))
            return f"deployed to {target}"

        return [slow, echo, inventory, flaky, deploy]

    def names(self) -> list[str]:
        return [name for name, _ in self.calls]


def make_agent(provider: Provider, tmp_path: Path, bench: Bench, **config: Any) -> LLMAgent:
    registry = ToolRegistry()
    registry.extend(bench.tools())
    settings = AgentConfig.model_validate({"provider": "main", "stream_min_chars": 1000, **config})
    return LLMAgent(lambda _: ResolvedModel(provider), registry, settings, tool_context=default_tool_context(tmp_path))


def plan_text(obj: object, *, fenced: bool = False) -> str:
    text = json.dumps(obj)
    return f"Here is the plan:\n```json\n{text}\n```" if fenced else text


def checklist(sent: Sequence[Outbound]) -> tuple[Outbound, list[Outbound]]:
    """The checklist message and its edits, from what the run sent."""
    first = next(o for o in sent if o.edit_of is None and o.final and not o.buttons and "☐" in o.text)
    return first, [o for o in sent if o.edit_of == first.id]


class CheckpointingContext(FakeRunContext):
    """A task's run context: records each step; raises ``PauseRequested`` at ``pause_at``."""

    def __init__(self, *args: Any, pause_at: str | None = None, resuming: bool = False, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.steps: list[tuple[str, int]] = []
        self.pause_at = pause_at
        self._resuming = resuming

    @property
    def resuming(self) -> bool:
        return self._resuming

    async def step(self, done: Sequence[HistoryItem], *, label: str) -> None:
        self.steps.append((label, len(done)))
        if label == self.pause_at:
            raise PauseRequested(label)
