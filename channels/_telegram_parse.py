"""Telegram updates → the hub's ``Inbound``s, without I/O (the adapter is ``channels/telegram.py``).

``parse_update`` turns a PTB ``Update`` into a ``Parsed``: the ``Inbound`` it would become and
what else the adapter must do for it (answer a callback query, download a document, say that a
kind of media is not supported). Access control, downloads and the inbox are the adapter's.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import PurePosixPath
from typing import Literal

from telegram import CallbackQuery, Document, Message, MessageEntity, Update, User

from hub.messages import Attachment, ConversationRef, Inbound, Sender, parse_command

__all__ = [
    "ALLOWED_UPDATES",
    "MediaKind",
    "Parsed",
    "conversation_of",
    "is_text_document",
    "parse_update",
    "update_key",
    "with_attachment",
]

ALLOWED_UPDATES = ("message", "callback_query")
"""The update types we ask for; edits, channel posts, reactions … are not conversations."""

_TEXT_EXTENSIONS = frozenset(
    "txt md markdown rst csv tsv json jsonl yaml yml toml ini cfg conf log xml html htm "
    "py js ts tsx jsx java c h cpp hpp cs go rs rb php sh bash zsh sql css scss kt swift "
    "lua pl r tex diff patch env properties gradle dockerfile makefile".split()
)
_TEXT_MIME_PREFIXES = ("text/",)
_TEXT_MIMES = frozenset(
    {
        "application/json",
        "application/xml",
        "application/x-yaml",
        "application/yaml",
        "application/toml",
        "application/x-sh",
        "application/javascript",
        "application/sql",
        "application/x-python",
        "application/x-ndjson",
    }
)
MediaKind = Literal["photo", "video", "voice", "audio", "animation", "sticker", "video_note", "document"]
_MEDIA: tuple[MediaKind, ...] = ("photo", "video", "voice", "audio", "animation", "sticker", "video_note")


@dataclass(frozen=True, slots=True, kw_only=True)
class Parsed:
    """One update, understood: the inbound it would become and what else it needs."""

    inbound: Inbound
    chat_type: str
    """Telegram's chat type: ``private``, ``group``, ``supergroup`` or ``channel``."""
    callback_id: str | None = None
    """For a button tap: the callback query to answer."""
    document: Document | None = None
    """A text-like document to download and attach."""
    unsupported: MediaKind | None = None
    """Media we cannot pass to the agent yet; the user gets a short note instead."""
    mentioned: bool = False
    """The bot's @username (or a text mention of it) is in the text."""
    replied_to_bot: bool = False


def parse_update(update: Update, *, channel: str, bot_username: str, bot_id: int) -> Parsed | None:
    """Understand ``update``; ``None`` for what the hub ignores (service messages, other bots' commands)."""
    platform_id = update_key(update)
    if update.callback_query is not None:
        return _parse_callback(update.callback_query, channel, platform_id)
    message = update.message
    if message is None or message.from_user is None or message.from_user.is_bot:
        return None
    text = message.text if message.text is not None else (message.caption or "")
    entities = message.entities if message.text is not None else message.caption_entities
    direct = message.chat.type == "private"
    command = None
    if text.startswith("/") and any(e.type == MessageEntity.BOT_COMMAND and e.offset == 0 for e in entities):
        command = parse_command(text, bot_username)
        if command is None:  # ``/cmd@otherbot``: addressed to another bot in the group
            return None
    mentioned = _mentions(text, entities, bot_username, bot_id)
    replied = message.reply_to_message
    replied_to_bot = replied is not None and replied.from_user is not None and replied.from_user.id == bot_id
    inbound = Inbound(
        kind="command" if command else "message",
        conversation=conversation_of(message, channel),
        sender=_sender(message.from_user),
        text=command[1] if command else _strip_mention(text, bot_username),
        command=command[0] if command else None,
        platform_id=platform_id,
        mentioned=mentioned or replied_to_bot,
        direct=direct,
        reply_to_platform_id=str(message.message_id),
    )
    document, unsupported = _media_of(message)
    if not text and document is None and unsupported is None:
        return None  # joins, pins, topic edits …
    return Parsed(
        inbound=inbound,
        chat_type=message.chat.type,
        document=document,
        unsupported=unsupported,
        mentioned=mentioned,
        replied_to_bot=replied_to_bot,
    )


def update_key(update: Update) -> str:
    """What makes an update unique for good: update ids restart after a week without updates."""
    if update.callback_query is not None:
        return f"callback:{update.callback_query.id}"
    message = update.effective_message
    if message is not None:
        return f"message:{message.chat.id}:{message.message_id}"
    return f"update:{update.update_id}"


def conversation_of(message: Message, channel: str) -> ConversationRef:
    # Replies in ordinary supergroups also carry message_thread_id; only forum topics are threads.
    topic = message.message_thread_id if message.is_topic_message else None
    thread = str(topic) if topic else None
    return ConversationRef(channel=channel, chat=str(message.chat.id), thread=thread)


def is_text_document(name: str | None, mime_type: str | None) -> bool:
    """Text-like by MIME type or file extension (the agent gets its decoded text)."""
    mime = (mime_type or "").lower()
    if mime.startswith(_TEXT_MIME_PREFIXES) or mime in _TEXT_MIMES:
        return True
    path = PurePosixPath((name or "").lower())
    return path.suffix.lstrip(".") in _TEXT_EXTENSIONS or path.name in _TEXT_EXTENSIONS


def with_attachment(inbound: Inbound, document: Document, text: str | None) -> Inbound:
    attachment = Attachment(
        name=document.file_name or "document",
        mime_type=document.mime_type or "application/octet-stream",
        size=document.file_size or 0,
        text=text,
    )
    return replace(inbound, attachments=(*inbound.attachments, attachment))


def _parse_callback(query: CallbackQuery, channel: str, platform_id: str) -> Parsed | None:
    message = query.message
    if message is None:  # too old to know its chat: answer it, nothing to route
        chat, chat_type, conv = str(query.from_user.id), "private", None
    else:
        chat, chat_type = str(message.chat.id), message.chat.type
        conv = conversation_of(message, channel) if isinstance(message, Message) else None
    inbound = Inbound(
        kind="button",
        conversation=conv or ConversationRef(channel=channel, chat=chat),
        sender=_sender(query.from_user),
        button=query.data or "",
        platform_id=platform_id,
        mentioned=True,
        direct=chat_type == "private",
        reply_to_platform_id=str(message.message_id) if message is not None else None,
    )
    return Parsed(inbound=inbound, chat_type=chat_type, callback_id=query.id)


def _sender(user: User) -> Sender:
    return Sender(id=str(user.id), name=user.full_name, username=user.username, is_bot=user.is_bot)


def _mentions(text: str, entities: tuple[MessageEntity, ...], bot_username: str, bot_id: int) -> bool:
    handle = f"@{bot_username}".lower()
    for entity in entities:
        if entity.type == MessageEntity.TEXT_MENTION and entity.user and entity.user.id == bot_id:
            return True
        if entity.type == MessageEntity.MENTION and _entity_text(text, entity).lower() == handle:
            return True
    return False


def _entity_text(text: str, entity: MessageEntity) -> str:
    # Entity offsets count UTF-16 code units (Bot API "MessageEntity").
    encoded = text.encode("utf-16-le")
    return encoded[entity.offset * 2 : (entity.offset + entity.length) * 2].decode("utf-16-le")


def _strip_mention(text: str, bot_username: str) -> str:
    if not bot_username:
        return text
    lowered, handle = text.lower(), f"@{bot_username}".lower()
    at = lowered.find(handle)
    if at < 0:
        return text
    return (text[:at].rstrip() + " " + text[at + len(handle) :].lstrip()).strip()


def _media_of(message: Message) -> tuple[Document | None, MediaKind | None]:
    if message.document is not None:
        doc = message.document
        if is_text_document(doc.file_name, doc.mime_type):
            return doc, None
        return None, "document"
    for kind in _MEDIA:
        if getattr(message, kind, None):
            return None, kind
    return None, None
