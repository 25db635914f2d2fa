"""The ``Tool`` interface: a frozen description plus an async ``invoke``.

Permission checks and approvals wrap tools (see ``agents.runtime``) rather than live in
them; a tool only enforces its own declared limits (path jail, allowlists, caps) through
the ``ToolContext`` it is given.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from hub.messages import ConversationRef, Sender


class Risk(StrEnum):
    LOW = "low"
    """Runs."""
    MEDIUM = "medium"
    """Runs unless config asks for approval of medium-risk tools."""
    HIGH = "high"
    """Always asks the user first."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ToolContext:
    """Per-call context: who asked, where, and the limits the tool must honour."""

    conversation: ConversationRef
    sender: Sender
    workspace: Path
    timezone: str = "UTC"
    config: Any = None
    """The ``[tools]`` settings (``agents.tools.config.ToolsConfig``)."""
    services: Any = None
    """Hub services a tool may use (e.g. the scheduler), or None."""


ToolInvoke = Callable[[dict[str, Any], ToolContext], Awaitable[str]]


@dataclass(frozen=True, slots=True, kw_only=True)
class Tool:
    name: str
    description: str
    parameters: dict[str, Any]
    """JSON schema of the arguments object (derived from type hints by ``@tool``)."""
    invoke: ToolInvoke
    """Validates ``args`` and runs; raises ``ToolFailed`` / ``ToolDenied``, never returns error strings."""
    category: str = "general"
    risk: Risk = Risk.LOW
    permissions: tuple[str, ...] = ()
    """Declared capabilities, e.g. ``fs.read``, ``fs.write``, ``shell``, ``net``."""
    timeout_seconds: float = 30.0


@dataclass(slots=True)
class ToolRegistry:
    """Tools by name, listed by category."""

    _tools: dict[str, Tool] = field(default_factory=dict)

    def add(self, tool: Tool) -> None:
        if tool.name in self._tools:
            raise ValueError(f"tool {tool.name!r} is already registered")
        self._tools[tool.name] = tool

    def extend(self, tools: Iterable[Tool]) -> None:
        for t in tools:
            self.add(t)

    def get(self, name: str) -> Tool | None:
        return self._tools.get(name)

    def __iter__(self) -> Iterator[Tool]:
        return iter(self._tools.values())

    def __len__(self) -> int:
        return len(self._tools)

    def by_category(self) -> dict[str, list[Tool]]:
        out: dict[str, list[Tool]] = {}
        for t in self._tools.values():
            out.setdefault(t.category, []).append(t)
        return out
