"""Conversions between python-telegram-bot and the hub, both ways.

* ``parse_update``: a PTB ``Update`` → the ``Inbound`` it would become (no I/O); the adapter
  (``channels/telegram.py``) does access control, downloads and the inbox around it.
* ``TelegramOps``: the ``PlatformOps`` primitives (post, edit, typing) on a PTB ``Bot``.
* ``map_errors``: PTB exceptions → ``ChannelError`` / ``FormattingRejected``, in one place.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import PurePosixPath
from typing import Literal

from telegram import (
    Bot,
    CallbackQuery,
    Document,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    Message,
    MessageEntity,
    ReplyParameters,
    Update,
    User,
)
from telegram.constants import ChatAction, ParseMode
from telegram.error import (
    BadRequest,
    ChatMigrated,
    Forbidden,
    InvalidToken,
    NetworkError,
    RetryAfter,
    TelegramError,
    TimedOut,
)
from telegram.warnings import PTBDeprecationWarning

from channels.delivery import FormattingRejected
from hub.errors import ChannelError
from hub.messages import Attachment, Button, ConversationRef, Inbound, Sender, parse_command

__all__ = [
    "ALLOWED_UPDATES",
    "Parsed",
    "TelegramOps",
    "is_group",
    "is_text_document",
    "map_errors",
    "parse_update",
    "retry_seconds",
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
_MEDIA = ("photo", "video", "voice", "audio", "animation", "sticker", "video_note")

MediaKind = Literal["photo", "video", "voice", "audio", "animation", "sticker", "video_note", "document"]


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
        reply_to=str(message.message_id),
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
        reply_to=str(message.message_id) if message is not None else None,
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
            return None, kind  # type: ignore[return-value]
    return None, None


def retry_seconds(exc: RetryAfter) -> float:
    with warnings.catch_warnings():  # int vs timedelta transition in PTB 22.2+
        warnings.simplefilter("ignore", PTBDeprecationWarning)
        value = exc.retry_after
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


@contextlib.contextmanager
def map_errors(what: str) -> Iterator[None]:
    """PTB exceptions → ``ChannelError`` (order matters: BadRequest and TimedOut are NetworkErrors)."""
    try:
        yield
    except RetryAfter as exc:
        seconds = retry_seconds(exc)
        raise ChannelError(f"telegram {what}: rate limited", retry_after=seconds, status=429) from exc
    except BadRequest as exc:
        if "can't parse entities" in exc.message.lower():
            raise FormattingRejected(f"telegram {what}: {exc.message}") from exc
        raise ChannelError(f"telegram {what}: {exc.message}", transient=False, status=400) from exc
    except Forbidden as exc:
        raise ChannelError(f"telegram {what}: {exc.message}", transient=False, status=403) from exc
    except InvalidToken as exc:
        raise ChannelError(f"telegram {what}: token rejected", transient=False, status=401) from exc
    except ChatMigrated as exc:
        raise ChannelError(
            f"telegram {what}: the group became supergroup {exc.new_chat_id}", transient=False, status=400
        ) from exc
    except (TimedOut, NetworkError) as exc:
        raise ChannelError(f"telegram {what}: {exc.message}", transient=True) from exc
    except TelegramError as exc:
        raise ChannelError(f"telegram {what}: {exc.message}", transient=True) from exc


def _chat_id(conv: ConversationRef) -> int | str:
    return int(conv.chat) if conv.chat.lstrip("-").isdigit() else conv.chat


def is_group(conv: ConversationRef) -> bool:
    # Telegram's private chats have positive ids; groups, supergroups and channels negative.
    return conv.chat.startswith("-")


def _keyboard(buttons: Sequence[Button]) -> InlineKeyboardMarkup | None:
    if not buttons:
        return None
    # callback_data is limited to 64 bytes; button ids are short hub ids.
    return InlineKeyboardMarkup([[InlineKeyboardButton(b.label, callback_data=b.id) for b in buttons]])


class TelegramOps:
    """``PlatformOps`` on a PTB ``Bot``: the primitives the shared ``Deliverer`` composes."""

    def __init__(self, bot: Bot) -> None:
        self._bot = bot

    async def post(
        self,
        conv: ConversationRef,
        text: str,
        *,
        rich: bool,
        reply_to: str | None = None,
        buttons: Sequence[Button] = (),
        nonce: str | None = None,
    ) -> str:
        chat = _chat_id(conv)
        # Threading a reply under the user's message helps only in groups (negative chat ids).
        reply = None
        if reply_to and reply_to.isdigit() and is_group(conv):
            reply = ReplyParameters(message_id=int(reply_to), allow_sending_without_reply=True)
        with map_errors("sendMessage"):
            message = await self._bot.send_message(
                chat_id=chat,
                text=text,
                parse_mode=ParseMode.HTML if rich else None,
                message_thread_id=int(conv.thread) if conv.thread else None,
                reply_parameters=reply,
                reply_markup=_keyboard(buttons),
            )
        return str(message.message_id)

    async def edit(
        self, conv: ConversationRef, message_id: str, text: str, *, rich: bool, buttons: Sequence[Button] = ()
    ) -> None:
        try:
            with map_errors("editMessageText"):
                await self._bot.edit_message_text(
                    text=text,
                    chat_id=_chat_id(conv),
                    message_id=int(message_id),
                    parse_mode=ParseMode.HTML if rich else None,
                    reply_markup=_keyboard(buttons),
                )
        except ChannelError as exc:
            # The Bot API refuses an edit that changes nothing; the message already says it.
            if "message is not modified" not in str(exc).lower():
                raise

    async def typing(self, conv: ConversationRef) -> None:
        with map_errors("sendChatAction"):
            await self._bot.send_chat_action(
                chat_id=_chat_id(conv),
                action=ChatAction.TYPING,
                message_thread_id=int(conv.thread) if conv.thread else None,
            )
