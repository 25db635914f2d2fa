"""The ``Tool`` interface: a frozen description plus an async ``invoke``.

Permission checks and approvals wrap tools (see ``agents.approvals``) rather than live in
them; a tool only enforces its own declared limits (path jail, allowlists, caps) through
the ``ToolContext`` it is given. A tool whose need for a person depends on its arguments
(a new host, a recurring job) says so through ``assess``, which runs before anyone is asked.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from hub.agent import JobScheduler
from hub.extensions import Manifest
from hub.messages import ConversationRef, Sender

if TYPE_CHECKING:  # .config imports Risk from here: the annotation only, not a runtime cycle
    from .config import ToolsConfig


class Risk(StrEnum):
    LOW = "low"
    """Runs."""
    MEDIUM = "medium"
    """Runs unless config asks for approval of medium-risk tools."""
    HIGH = "high"
    """Always asks the user first."""


def needs_approval(risk: Risk, *, approve_medium: bool) -> bool:
    """Whether a call of this risk level asks a person first (``[tools] approve_medium``)."""
    return risk is Risk.HIGH or (risk is Risk.MEDIUM and approve_medium)


READS_DATA = frozenset({"fs.read", "shell.exec"})
"""Permissions of tools whose results are data the model read (files, command output)."""


class Exposure:
    """What the model has read in this run and before it: file contents, command output, the
    conversation's history. A request leaving the hub that carries any of it is high risk.

    ``earlier`` is read only when first needed, so runs that never ask pay nothing for it.
    """

    __slots__ = ("_earlier", "_texts")

    def __init__(self, earlier: Iterable[str] = ()) -> None:
        self._earlier: Iterable[str] | None = earlier
        self._texts: list[str] = []

    def add(self, text: str) -> None:
        if text:
            self._texts.append(text.casefold())

    def contains(self, fragment: str) -> bool:
        """Whether ``fragment`` (compared without case) occurs in anything read."""
        if self._earlier is not None:
            self._texts.extend(t.casefold() for t in self._earlier if t)
            self._earlier = None
        needle = fragment.casefold()
        return bool(needle) and any(needle in text for text in self._texts)


class ToolServices(Protocol):
    """The hub's services a tool may use (``hub.agent.AgentServices`` is one)."""

    @property
    def scheduler(self) -> JobScheduler | None: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class ToolContext:
    """Per-call context: who asked, where, and the limits the tool must honour."""

    conversation: ConversationRef
    sender: Sender
    workspace: Path
    """This call's workspace (already chosen by ``[tools] workspace_scope``): the only place
    file, search and shell tools may read or write."""
    config: ToolsConfig
    """The ``[tools]`` settings."""
    timezone: str = "UTC"
    services: ToolServices | None = None
    """Hub services a tool may use (the scheduler), or None."""
    protected: tuple[Path, ...] = ()
    """The hub's own paths (data directory, config file, database, home): no tool may see them."""
    exposure: Exposure = field(default_factory=Exposure)
    """What the model has read so far (see ``Exposure``); the executor adds each result."""
    grants: set[str] = field(default_factory=set)
    """Approvals this conversation keeps (``egress:example.com``); the executor adds to it."""


ToolInvoke = Callable[[dict[str, Any], ToolContext], Awaitable[str]]


@dataclass(frozen=True, slots=True, kw_only=True)
class Approval:
    """A call that must not run before a person says yes, and why."""

    reason: str
    """Shown in the question above the call, e.g. "first request to example.com"."""
    remember_as: str | None = None
    """A grant (``egress:example.com``) kept for the conversation once approved, so calls of the
    same kind there run without asking again; None asks every time."""
    grantable: bool = True
    """Whether a job's up-front grant of this tool may stand in for a person when nobody watches."""
    detail: str = ""
    """What exactly will run, when the arguments alone do not show it (a command's argument
    vector, one per line); shown in full under the arguments."""


Assess = Callable[[dict[str, Any], ToolContext], Approval | None]
"""Decides from a call's arguments whether it needs a person (None: it may run). May raise
``ToolDenied`` / ``ToolFailed`` to refuse the call before anyone is asked."""


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
    assess: Assess | None = None
    """Per-call approval rule; None: ``risk`` alone decides."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ToolExtension:
    """What an ``autohands.tools`` entry point names, an installed package's or a folder
    extension's (docs/EXTENSION_GUIDE.md): its manifest and the tools it adds."""

    manifest: Manifest
    build: Callable[[ToolsConfig], Iterable[Tool]]
    """The tools, given the ``[tools]`` section; may raise (the extension is then marked failed)."""
    categories: Mapping[str, str] = field(default_factory=dict)
    """Category → one line on what its tools are for (``ToolRegistry.describe``)."""


BUILTIN_CATEGORIES: dict[str, str] = {
    "file": "read, write, list and delete files in the workspace",
    "search": "find files by name (glob) or by content (grep) in the workspace",
    "shell": "run a program (ls, git, python3, jq …) in the workspace",
    "web": "fetch a web page or URL and read it as text",
    "math": "exact arithmetic and statistics",
    "time": "the current date and time, time zone conversion",
    "schedule": "reminders and recurring jobs: create, list, cancel",
    "memory": "remember facts about the user across conversations, recall and forget them",
}
"""One line per built-in category, for the model choosing which tools a request needs
(``agents.intent``); an extension describes its own with ``ToolRegistry.describe``."""


@dataclass(slots=True)
class ToolRegistry:
    """Tools by name, listed by category (each category with a one-line description)."""

    _tools: dict[str, Tool] = field(default_factory=dict)
    _described: dict[str, str] = field(default_factory=lambda: dict(BUILTIN_CATEGORIES))

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

    def describe(self, category: str, description: str) -> None:
        """Say in one line what ``category``'s tools are for (shown to the intent step)."""
        self._described[category] = " ".join(description.split())

    def extended(self, tools: Iterable[Tool], described: Mapping[str, str]) -> ToolRegistry:
        """A new registry: this one's tools and descriptions, then ``tools`` and ``described``
        (a reload's; this registry is never changed, so a run holding it keeps what it had)."""
        out = ToolRegistry(dict(self._tools), dict(self._described))
        out.extend(tools)
        for category, line in described.items():
            out.describe(category, line)
        return out

    def categories(self) -> dict[str, str]:
        """Each category that has tools → its one-line description, in registration order; a
        category nobody described is described by its tools' names."""
        return {
            cat: self._described.get(cat) or "tools: " + ", ".join(t.name for t in tools)
            for cat, tools in self.by_category().items()
        }
