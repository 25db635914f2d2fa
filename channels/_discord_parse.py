"""discord.py messages and interactions → the hub's ``Inbound``s, without I/O (the adapter is
``channels/discord.py``).

Conversations: a guild text channel or a DM is ``ConversationRef(chat=<channel id>)``; a thread
is its own conversation, ``ConversationRef(chat=<parent channel id>, thread=<thread id>)``.
Because a Discord thread *is* a channel, replies are posted to ``thread`` when set
(``channels._discord_api.target_channel_id``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import discord

from hub.messages import Attachment, ConversationRef, Inbound, Sender, parse_command

__all__ = [
    "ChannelInfo",
    "button_inbound",
    "channel_info",
    "mentions_bot",
    "message_inbound",
    "replies_to_bot",
]

_ANSWERABLE = (discord.MessageType.default, discord.MessageType.reply)


@dataclass(frozen=True, slots=True, kw_only=True)
class ChannelInfo:
    """What the adapter remembers about a channel it has seen active (persisted as JSON)."""

    id: str
    guild_id: str | None = None
    parent_id: str | None = None
    """Set for threads: the channel the thread lives in."""

    @property
    def direct(self) -> bool:
        return self.guild_id is None

    def conversation(self, channel_name: str) -> ConversationRef:
        if self.parent_id:
            return ConversationRef(channel=channel_name, chat=self.parent_id, thread=self.id)
        return ConversationRef(channel=channel_name, chat=self.id)


def channel_info(channel: object, guild_id: int | None) -> ChannelInfo:
    """Describe a message's channel; works for cached channels and ``PartialMessageable``."""
    cid = str(getattr(channel, "id", ""))
    gid = str(guild_id) if guild_id else None
    if isinstance(channel, discord.Thread):
        return ChannelInfo(id=cid, guild_id=gid, parent_id=str(channel.parent_id))
    return ChannelInfo(id=cid, guild_id=gid)


def _mention_re(bot_id: int) -> re.Pattern[str]:
    return re.compile(rf"<@!?{bot_id}>")


def mentions_bot(message: discord.Message, bot_id: int) -> bool:
    return any(user.id == bot_id for user in message.mentions) or bool(_mention_re(bot_id).search(message.content))


def replies_to_bot(message: discord.Message, bot_id: int) -> bool:
    ref = message.reference
    resolved = ref.resolved if ref else None
    return isinstance(resolved, discord.Message) and resolved.author.id == bot_id


def _sender(user: discord.User | discord.Member) -> Sender:
    return Sender(id=str(user.id), name=user.display_name, username=user.name, is_bot=user.bot)


def message_inbound(channel_name: str, message: discord.Message, info: ChannelInfo, *, bot_id: int) -> Inbound | None:
    """The ``Inbound`` for a user's message, or ``None`` for messages the hub never answers
    (bots including ourselves, system messages such as joins and pins).

    ``mentioned`` is set for a mention of the bot *or* a reply to one of its messages; the
    sender's ``is_admin`` is left for the access policy to set."""
    if message.author.bot or message.author.id == bot_id or message.type not in _ANSWERABLE:
        return None
    text = _mention_re(bot_id).sub("", message.content).strip()
    parsed = parse_command(text)
    return Inbound(
        kind="command" if parsed else "message",
        conversation=info.conversation(channel_name),
        sender=_sender(message.author),
        text=parsed[1] if parsed else text,
        command=parsed[0] if parsed else None,
        platform_id=str(message.id),
        mentioned=mentions_bot(message, bot_id) or replies_to_bot(message, bot_id),
        direct=info.direct,
        reply_to_platform_id=str(message.id),
        attachments=tuple(
            Attachment(name=a.filename, mime_type=a.content_type or "application/octet-stream", size=a.size)
            for a in message.attachments
        ),
    )


def button_inbound(channel_name: str, interaction: discord.Interaction, info: ChannelInfo) -> Inbound | None:
    """A component click → ``Inbound(kind="button")`` carrying the clicking user."""
    data: dict[str, Any] = dict(interaction.data or {})
    custom_id = data.get("custom_id")
    if interaction.type is not discord.InteractionType.component or not isinstance(custom_id, str):
        return None
    user = interaction.user
    message = interaction.message
    return Inbound(
        kind="button",
        conversation=info.conversation(channel_name),
        sender=_sender(user),
        button=custom_id,
        platform_id=f"interaction:{interaction.id}",
        mentioned=True,
        direct=info.direct,
        reply_to_platform_id=str(message.id) if message else None,
    )
