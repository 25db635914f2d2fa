"""The built-in tool set, filtered by the categories ``[tools] enabled`` lists."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from pydantic import BaseModel

from hub.agent import Check
from hub.extensions import Manifest

from .base import BUILTIN_CATEGORIES, Tool, ToolExtension, ToolRegistry
from .config import Category, FileToolsConfig, SearchToolsConfig, ShellToolsConfig, ToolsConfig, WebToolsConfig
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


def _tool_set(
    category: Category, name: str, tools: tuple[str, ...], config: type[BaseModel] | None, *perms: str
) -> ToolExtension:
    """A built-in category's manifest (``autohands extensions``, docs/EXTENSIONS.md); the agent
    builds the built-ins through ``builtin_tools``, not through ``build``."""
    manifest = Manifest(
        id=category,
        name=name,
        description=BUILTIN_CATEGORIES[category],
        provides=tuple(f"tool:{t}" for t in tools),
        config=config,
        permissions=perms,
    )
    return ToolExtension(
        manifest=manifest, build=lambda c: builtin_tools(c.model_copy(update={"enabled": (category,)}))
    )


FILE = _tool_set(
    "file",
    "File tools",
    ("read_file", "write_file", "list_dir", "delete_file"),
    FileToolsConfig,
    "fs.read",
    "fs.write",
    "fs.delete",
)
SEARCH = _tool_set("search", "Search tools", ("grep", "glob"), SearchToolsConfig, "fs.read")
SHELL = _tool_set("shell", "Shell", ("run_command",), ShellToolsConfig, "shell.exec")
WEB = _tool_set("web", "Web fetch", ("fetch_url",), WebToolsConfig, "net.http")
MATH = _tool_set("math", "Math", ("calculate", "stats"), None)
TIME = _tool_set("time", "Time", ("now", "convert_time"), None)
SCHEDULE = _tool_set("schedule", "Schedule", ("schedule",), None, "scheduler")
MEMORY = _tool_set("memory", "Memory", ("remember", "recall", "forget"), None, "memory")
"""Entry points ``autohands.tools``: one per built-in category (pyproject.toml)."""


def builtin_tools(config: ToolsConfig) -> list[Tool]:
    """The enabled categories' tools, configured (risk, timeouts) from ``config``."""
    tools: list[Tool] = []
    for category in dict.fromkeys(config.enabled):
        factory = _FACTORIES.get(category)
        if factory is not None:  # "schedule" and "memory" need the hub's parts: agents.build adds them
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
