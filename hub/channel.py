"""The ``Channel`` contract: what the hub needs from a platform adapter, and what it gives one.

The hub drives channels through these names without importing ``channels/``; adapter authors
import the same names from ``channels.base``. An adapter class (``ChannelClass``) is named by an
entry point of the group ``autohands.channels``. The hub validates the channel's config section
with the class's ``config_model``, constructs it as ``cls(name, config, context)`` and starts it
with an ``Inbox``, the channel's one way in to the hub.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal, Protocol, TypeVar, runtime_checkable

from aiohttp import web
from pydantic import BaseModel

from .extensions import Manifest
from .messages import ConversationRef, Delivery, Inbound, Outbound

if TYPE_CHECKING:
    from .api_runs import Runs
    from .auth import Auth

__all__ = [
    "Capabilities",
    "Channel",
    "ChannelClass",
    "ChannelContext",
    "CommandInfo",
    "ConsoleChannel",
    "Dialect",
    "Handler",
    "Inbox",
    "KeyValueState",
    "Manifest",
    "Pairing",
]

Dialect = Literal["plain", "markdown", "telegram_html", "slack_mrkdwn", "discord_markdown"]
"""The markup a platform shows; replies are rendered into it before they are sent."""

Inbox = Callable[[Inbound], Awaitable[bool]]
"""Records an inbound durably and hands it to the hub; returns False for a redelivery.

When the call returns, the inbound is committed: only then may the channel acknowledge the
platform (advance the Telegram offset, answer Slack's HTTP request)."""

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
"""An aiohttp handler for a route a channel mounts on the hub's server (a platform's webhook)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Capabilities:
    """What a platform can show; the shared delivery machinery adapts replies to it."""

    max_length: int = 4096
    """Longest message the platform takes, as it counts length, after rendering."""
    dialect: Dialect = "plain"
    edits: bool = False
    """Sent messages can be edited: a streamed reply is one message edited in place."""
    buttons: bool = False
    """Messages can carry buttons; without, their labels are written out as text."""
    typing: bool = False
    """The platform shows a typing indicator."""


@dataclass(frozen=True, slots=True, kw_only=True)
class CommandInfo:
    """A hub command as a channel may list it (Telegram's command menu, Slack's usage line)."""

    name: str
    description: str


class KeyValueState(Protocol):
    """Small durable key/value state a channel may keep (e.g. the last message id seen)."""

    async def get(self, key: str) -> str | None: ...
    async def set(self, key: str, value: str) -> None: ...


class Pairing(Protocol):
    """The hub's pairing service as a channel uses it (``hub.pairing.PairingService``): who an
    operator let in, and a code for a stranger to hand to the operator."""

    async def is_approved(self, channel: str, user_id: str) -> bool:
        """Whether an approved pairing let ``user_id`` in on ``channel`` (read from the store,
        so an approval or revocation made by ``autohands pairing`` / ``users`` counts at once)."""
        ...

    async def request_code(self, channel: str, user_id: str, display_name: str) -> str | None:
        """The user's pending code (the same one while it lasts), else a new one; None when the
        channel has as many codes pending as it may (the stranger should try later)."""
        ...


@dataclass(slots=True, kw_only=True)
class ChannelContext:
    """The narrow part of the hub a channel may use."""

    state: KeyValueState
    commands: Sequence[CommandInfo] = ()
    data_dir: Path = Path(".")
    pairing: Pairing | None = None
    """The hub's pairing service; None for a channel built outside a hub, which then refuses
    strangers in direct chats as ``dm_policy = "allowlist"`` does."""
    auth: Auth | None = None
    """Who is asking the hub's HTTP server (API keys, login cookie, the loopback rule); None
    when ``[server] enabled = false``. Channels serving people over HTTP (the web chat, the API)
    check every request with it."""
    runs: Runs | None = None
    """The hub's sessions as a channel answering HTTP requests sees them (``hub.api_runs``:
    the run-slot limit, a request's own history, its run's replies and end); None outside a hub."""
    routes: list[tuple[str, str, Handler]] = field(default_factory=list)
    """Webhook routes the channel mounts on the hub's aiohttp server (method, path, handler).
    Append in ``__init__`` or before ``start`` returns; the server starts after channels."""

    def add_route(self, method: str, path: str, handler: Handler) -> None:
        self.routes.append((method, path, handler))


class Channel(Protocol):
    """A platform adapter.

    ``start`` returns once connected; ``send`` raises ``ChannelError`` (``retryable`` decides
    whether the outbox retries).
    """

    name: str
    capabilities: Capabilities
    problem: str | None
    """Set when a started channel has stopped working for good (a token revoked while running),
    so ``/healthz`` reports it; ``None`` otherwise. The SDKs reconnect through everything else."""

    async def start(self, inbox: Inbox) -> None: ...
    async def stop(self) -> None: ...
    async def send(self, msg: Outbound) -> Delivery: ...


@runtime_checkable
class ConsoleChannel(Channel, Protocol):
    """A channel a person uses in the hub's own terminal (``autohands chat``): Ctrl+C and leaving
    the chat are its to handle, so the command line asks it rather than stopping the hub."""

    closed: asyncio.Event
    """Set when the person has left (EOF, ``/quit``) and every answer has been shown."""

    def interrupt(self) -> bool:
        """Ctrl+C: stop the answer in progress and return True; False when there is nothing to
        stop (or on a second Ctrl+C before the first took effect): the person leaves."""
        ...

    conversation: ConversationRef
    """The one conversation the person holds here (the chat's banner tells of its history)."""

    def begin(self) -> None:
        """Show the first prompt: the command line calls it once its banner is on screen."""
        ...

    def note(self, text: str) -> None:
        """Show ``text`` apart from the conversation (an error the person should know of), on
        a line of its own; called on the event loop's thread."""
        ...


ConfigT = TypeVar("ConfigT", bound=BaseModel)


class ChannelClass(Protocol[ConfigT]):
    """An adapter class, as an ``autohands.channels`` entry point names it.

    Constructed as ``cls(name, config, context)``, ``config`` being its ``config_model``
    validated from the channel's config section. Members are read-only properties, not
    ``ClassVar``s, so that a class object matches and each class may narrow ``config_model`` to
    its own model.
    """

    @property
    def config_model(self) -> type[ConfigT]: ...
    @property
    def manifest(self) -> Manifest: ...
    def __call__(self, name: str, config: ConfigT, context: ChannelContext) -> Channel: ...
