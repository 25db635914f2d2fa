"""Slash commands that work without any model: a registry other parts add to.

Channels learn the list (Telegram's ``setMyCommands``, Slack's ``/ask <subcommand>``), the
session manager dispatches them. ``control`` commands (``/stop``) bypass the conversation's
queue because the run they address is what blocks it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

from .channel import CommandInfo
from .messages import Inbound


class SessionControl(Protocol):
    """What a command handler may do to its session."""

    @property
    def settings(self) -> dict[str, str]: ...
    async def set_setting(self, key: str, value: str | None) -> None: ...
    async def reset(self) -> None:
        """Start fresh history (``/new``)."""

    def stop_run(self) -> bool:
        """Abort the run in progress; False if none."""

    def status(self) -> str: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class CommandCall:
    inbound: Inbound
    args: str
    session: SessionControl
    is_admin: bool = False


CommandHandler = Callable[[CommandCall], Awaitable[str | None]]


@dataclass(frozen=True, slots=True, kw_only=True)
class Command:
    name: str
    description: str
    handler: CommandHandler
    usage: str = ""
    control: bool = False
    """Handled outside the conversation queue."""


class CommandRegistry:
    """Name → command; later registrations of the same name are refused (names must be unique)."""

    def __init__(self) -> None:
        self._commands: dict[str, Command] = {}

    def add(self, command: Command) -> None:
        if command.name in self._commands:
            raise ValueError(f"command /{command.name} is already registered")
        self._commands[command.name] = command

    def get(self, name: str) -> Command | None:
        return self._commands.get(name)

    def __contains__(self, name: object) -> bool:
        return name in self._commands

    def infos(self) -> list[CommandInfo]:
        return [CommandInfo(name=c.name, description=c.description) for c in self._commands.values()]

    def help_text(self) -> str:
        lines = ["Commands:"]
        for c in self._commands.values():
            usage = f" {c.usage}" if c.usage else ""
            lines.append(f"/{c.name}{usage} — {c.description}")
        return "\n".join(lines)
