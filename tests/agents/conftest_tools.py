"""Helpers shared by the tool tests: a per-call context on a temporary workspace."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from agents.tools.base import Tool, ToolContext
from agents.tools.config import ToolsConfig
from hub.messages import ConversationRef, Sender


def make_ctx(
    workspace: Path,
    config: ToolsConfig | None = None,
    *,
    timezone: str = "UTC",
    sender: Sender | None = None,
    conversation: ConversationRef | None = None,
) -> ToolContext:
    return ToolContext(
        conversation=conversation or ConversationRef(channel="test", chat="c1"),
        sender=sender or Sender(id="u1", name="Tester"),
        workspace=workspace,
        timezone=timezone,
        config=config if config is not None else ToolsConfig(),
    )


async def call(tool: Tool, ctx: ToolContext, **args: Any) -> str:
    return await tool.invoke(args, ctx)
