"""What the hub needs from a channel, and how extensions are found.

The ``Channel`` protocol lives here because the hub drives channels without importing
``channels/``; ``channels/base.py`` re-exports it for adapter authors. Extensions register
through entry points (``autohands.channels``, ``autohands.agents``, ``autohands.tools`` …) and
are loaded only when config enables them, so discord.py is never imported unless Discord is on.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path
from typing import Any, ClassVar, Literal, Protocol, runtime_checkable

from aiohttp import web
from pydantic import BaseModel

from .errors import PluginError
from .messages import Delivery, Inbound, Outbound

Dialect = Literal["plain", "markdown", "telegram_html", "slack_mrkdwn", "discord_markdown"]

Inbox = Callable[[Inbound], Awaitable[bool]]
"""Records an inbound durably and hands it to the hub; returns False for a redelivery.

When the call returns, the inbound is committed: only then may the channel acknowledge the
platform (advance the Telegram offset, answer Slack's HTTP request)."""

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True, slots=True, kw_only=True)
class Capabilities:
    """What a platform can show; the shared delivery machinery adapts replies to it."""

    max_length: int = 4096
    dialect: Dialect = "plain"
    edits: bool = False
    buttons: bool = False
    threads: bool = False
    typing: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class Manifest:
    """Describes an extension for ``autohands extensions`` and ``doctor``."""

    id: str
    version: str = "0.1.0"
    description: str = ""
    permissions: tuple[str, ...] = ()
    secrets: tuple[str, ...] = ()
    """Config keys that hold credentials; ``doctor`` reports whether each is present."""


@dataclass(frozen=True, slots=True, kw_only=True)
class CommandInfo:
    name: str
    description: str


class KeyValueState(Protocol):
    """Small durable key/value state a channel may keep (e.g. the last message id seen)."""

    async def get(self, key: str) -> str | None: ...
    async def set(self, key: str, value: str) -> None: ...


@dataclass(slots=True, kw_only=True)
class ChannelContext:
    """The narrow part of the hub a channel may use."""

    state: KeyValueState
    commands: Sequence[CommandInfo] = ()
    data_dir: Path = Path(".")
    routes: list[tuple[str, str, Handler]] = field(default_factory=list)
    """Webhook routes the channel mounts on the hub's aiohttp server (method, path, handler).
    Append in ``__init__`` or before ``start`` returns; the server starts after channels."""

    def add_route(self, method: str, path: str, handler: Handler) -> None:
        self.routes.append((method, path, handler))


@runtime_checkable
class Channel(Protocol):
    """A platform adapter.

    Constructed as ``cls(name, config, context)`` where ``config`` is an instance of the
    class's ``config_model``. ``start`` returns once connected; ``send`` raises
    ``ChannelError`` (``transient`` decides whether the outbox retries).

    Optionally a ``problem: str | None`` attribute: set when a started channel has stopped
    working for good (a token revoked while running), so ``/healthz`` reports it; the SDKs
    reconnect through everything else on their own.
    """

    name: str
    capabilities: Capabilities

    async def start(self, inbox: Inbox) -> None: ...
    async def stop(self) -> None: ...
    async def send(self, msg: Outbound) -> Delivery: ...


class ChannelClass(Protocol):
    config_model: ClassVar[type[BaseModel]]
    manifest: ClassVar[Manifest]

    def __call__(self, name: str, config: Any, context: ChannelContext) -> Channel: ...


def find_entry_point(group: str, name: str) -> EntryPoint:
    for ep in entry_points(group=group):
        if ep.name == name:
            return ep
    known = ", ".join(sorted(ep.name for ep in entry_points(group=group))) or "none"
    raise PluginError(f"no extension {name!r} in entry-point group {group!r} (installed: {known})")


def load_entry_point(group: str, name: str) -> Any:
    ep = find_entry_point(group, name)
    try:
        return ep.load()
    except Exception as exc:  # an extension's import error must name the extension
        raise PluginError(f"extension {name!r} ({ep.value}) failed to load: {exc}") from exc


def list_entry_points(group: str) -> list[EntryPoint]:
    return sorted(entry_points(group=group), key=lambda ep: ep.name)
