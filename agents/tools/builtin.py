"""The built-in tool set, filtered by the categories ``[tools] enabled`` lists."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from hub.agent import Check

from .base import Tool, ToolRegistry
from .config import Category, ToolsConfig
from .file import file_tools
from .math import math_tools
from .sandbox import sandbox_status
from .search import search_tools
from .shell import shell_tools
from .time import time_tools
from .web import web_tools

_FACTORIES: dict[Category, Callable[[ToolsConfig], list[Tool]]] = {
    "file": lambda _config: file_tools(),
    "shell": shell_tools,
    "web": web_tools,
    "search": lambda _config: search_tools(),
    "math": lambda _config: math_tools(),
    "time": lambda _config: time_tools(),
}


def builtin_tools(config: ToolsConfig) -> list[Tool]:
    """The enabled categories' tools, configured (risk, timeouts) from ``config``."""
    tools: list[Tool] = []
    for category in dict.fromkeys(config.enabled):
        factory = _FACTORIES.get(category)
        if factory is not None:  # "schedule" needs the hub's scheduler: agents.build adds it
            tools.extend(factory(config))
    return tools


def tool_checks(config: ToolsConfig, root: Path) -> list[Check]:
    """``autohands doctor``'s rows for the tools: where workspaces live, and the command sandbox."""
    scope = {"user": "one per user", "conversation": "one per conversation", "shared": "one shared by everyone"}
    rows = [Check("tools workspace", "ok", f"{root} ({scope[config.workspace_scope]}; tools see nothing else)")]
    if "shell" not in config.enabled:
        rows.append(Check("tools shell", "off", "the shell category is not in [tools] enabled"))
    else:
        status, detail = sandbox_status(config.shell)
        rows.append(Check("tools shell", status, detail))
    return rows


def register_builtin(registry: ToolRegistry, config: ToolsConfig) -> None:
    """Add the enabled built-in tools to ``registry``."""
    registry.extend(builtin_tools(config))
