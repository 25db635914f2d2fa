"""Typed envelopes that travel on the bus.

Everything that crosses a part boundary is one of these frozen dataclasses; platform
extras stay in the adapter. Timestamps are UTC-aware.
"""

from __future__ import annotations

import itertools
import os
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

InboundKind = Literal["message", "command", "button", "job"]
TextFormat = Literal["markdown", "plain"]
"""How an outbound's text is meant: Markdown (rendered per platform) or plain text."""


def utcnow() -> datetime:
    return datetime.now(UTC)


_ID_PREFIX = os.urandom(5).hex()
_ID_COUNTER = itertools.count(1)


def new_id() -> str:
    """A short unique id for hub-assigned things (outbounds, streams, approvals).

    A random per-process prefix plus a counter: unique across processes and restarts, at most
    20 characters (Discord nonces take 25), and without a system call per id on the hot path.
    """
    return f"{_ID_PREFIX}{next(_ID_COUNTER):x}"


def new_incident_id() -> str:
    """Eight random hex digits that tie what a chat user is told to the log line with the error.

    Not ``new_id()[:8]``: that is its per-process prefix, the same for every incident."""
    return os.urandom(4).hex()


@dataclass(frozen=True, slots=True, kw_only=True)
class ConversationRef:
    """Where a conversation lives: a channel instance, a chat in it, and optionally a thread."""

    channel: str
    """The channel instance name from config (e.g. ``telegram``)."""
    chat: str
    """The platform's chat / channel / DM id, as a string."""
    thread: str | None = None
    """A thread inside the chat (Slack thread ts, Discord thread id, Telegram topic); its own conversation."""

    @property
    def key(self) -> str:
        """A stable string key: ``channel:chat`` or ``channel:chat:thread``."""
        base = f"{self.channel}:{self.chat}"
        return f"{base}:{self.thread}" if self.thread else base

    @classmethod
    def from_key(cls, key: str) -> ConversationRef:
        """The inverse of ``key`` (the store keys conversations by it)."""
        channel, _, rest = key.partition(":")
        chat, _, thread = rest.partition(":")
        return cls(channel=channel, chat=chat, thread=thread or None)


@dataclass(frozen=True, slots=True, kw_only=True)
class Sender:
    """Who wrote an inbound message."""

    id: str
    """The platform's user id, as a string."""
    name: str = ""
    """Display name, for the prompt and logs."""
    username: str | None = None
    """Handle without ``@`` where the platform has one."""
    is_bot: bool = False
    is_admin: bool = False
    """Set by the channel from its ``admins`` list (may cancel others' jobs, use admin commands)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Attachment:
    """A file that came with a message. Text-like files carry their decoded text."""

    name: str
    mime_type: str = "application/octet-stream"
    size: int = 0
    text: str | None = None
    """Decoded content for text-like files that were downloaded; ``None`` for others."""


@dataclass(frozen=True, slots=True, kw_only=True)
class JobInfo:
    """Why a ``job`` inbound exists: which scheduled job fired, and what it asks for."""

    job_id: str
    action: Literal["send", "agent"]
    """``send``: deliver ``Inbound.text`` as is; ``agent``: run the agent with it as the prompt."""
    due_at: datetime
    late_seconds: float = 0.0
    missed: bool = False
    """True when the run was beyond the grace period: the user is told it was missed."""
    description: str = ""
    granted_tools: tuple[str, ...] = ()
    """Tools the job may use without asking: approved by its creator when it was created."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Inbound:
    """One thing a user (or the scheduler) asked of the hub."""

    kind: InboundKind
    conversation: ConversationRef
    sender: Sender
    text: str = ""
    """Message text; for ``command`` the argument string after the command name."""
    platform_id: str = ""
    """The platform's own id for this event (dedupe key together with the channel)."""
    command: str | None = None
    """For ``command``: the name without slash, lower case (``remind``)."""
    button: str | None = None
    """For ``button``: the button id that was tapped."""
    job: JobInfo | None = None
    mentioned: bool = False
    """The bot was mentioned or replied to."""
    direct: bool = False
    """A one-to-one chat with the bot."""
    reply_to_platform_id: str | None = None
    """The platform's id of the message an answer should reply to / thread under: the user's
    own message (``None`` where there is none, e.g. a scheduled job). Copied into
    ``Outbound.reply_to_platform_id``."""
    attachments: tuple[Attachment, ...] = ()
    received_at: datetime = field(default_factory=utcnow)
    id: int = 0
    """The store's row id, set once recorded (0 before)."""

    @property
    def attended(self) -> bool:
        """Whether a person is there to answer a question about this run: not for a job."""
        return self.kind != "job"


@dataclass(frozen=True, slots=True, kw_only=True)
class Button:
    id: str
    label: str
    style: Literal["primary", "danger", "default"] = "default"


@dataclass(frozen=True, slots=True, kw_only=True)
class Outbound:
    """One thing the hub says in a conversation.

    Partial outbounds (``final=False``) that share a ``stream`` become one platform message
    edited in place; the final outbound of that stream finishes it. Only finals are durable.
    """

    conversation: ConversationRef
    text: str
    id: str = field(default_factory=new_id)
    """Hub id; also the idempotency key (nonce) where the platform has one."""
    final: bool = True
    stream: str | None = None
    reply_to_platform_id: str | None = None
    """The platform's id of the message to reply to (threads the answer under the user's
    message); a platform id, unlike ``edit_of`` and ``inbound_id``."""
    buttons: tuple[Button, ...] = ()
    edit_of: str | None = None
    """Hub id of an earlier outbound to replace instead of sending a new message."""
    inbound_id: int = 0
    """The store's row id (``Inbound.id``) of the inbound this answers; 0 for none."""
    format: TextFormat = "markdown"
    typing: bool = False
    """A typing indicator only; ``text`` is ignored."""
    ephemeral_to: str | None = None
    """Where supported (Slack), show only to this user id."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Delivery:
    """What the platform answered for a send: its message ids (one per part when split)."""

    platform_ids: tuple[str, ...] = ()


def parse_command(text: str, bot_username: str | None = None) -> tuple[str, str] | None:
    """Split ``/name@bot args`` into ``(name, args)``; ``None`` if ``text`` is not a command.

    A command addressed to another bot (``/x@otherbot``) is not ours and returns ``None``.
    """
    if not text.startswith("/") or len(text) < 2:
        return None
    head, _, args = text[1:].partition(" ")
    name, _, target = head.partition("@")
    if not name or not (name[0].isalpha()):
        return None
    if target and bot_username and target.lower() != bot_username.lower():
        return None
    return name.lower(), args.strip()
