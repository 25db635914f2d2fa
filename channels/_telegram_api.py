"""The Telegram Bot API calls the hub makes through python-telegram-bot, and their errors.

* ``TelegramOps``: the ``PlatformOps`` primitives (post, edit, typing) on a PTB ``Bot``, which
  the shared ``Deliverer`` composes.
* ``map_errors``: PTB exceptions → ``ChannelError`` / ``FormattingRejected``, in one place.
* ``probe_bot``: ``autohands doctor``'s live ``getMe`` (``TelegramChannel.probe``).
"""

from __future__ import annotations

import asyncio
import contextlib
import warnings
from collections.abc import Iterator, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup, ReplyParameters
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
from telegram.request import HTTPXRequest
from telegram.warnings import PTBDeprecationWarning

from channels._probe import failed, validated
from channels.delivery import FormattingRejected
from hub.agent import Check
from hub.errors import ChannelError
from hub.messages import Button, ConversationRef

if TYPE_CHECKING:
    from channels.telegram import TelegramConfig

__all__ = ["TelegramOps", "is_group", "map_errors", "probe_bot", "retry_seconds"]


def retry_seconds(exc: RetryAfter) -> float:
    """The seconds a ``RetryAfter`` asks us to wait."""
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
        raise ChannelError(f"telegram {what}: {exc.message}", retryable=False, status=400) from exc
    except Forbidden as exc:
        raise ChannelError(f"telegram {what}: {exc.message}", retryable=False, status=403) from exc
    except InvalidToken as exc:
        raise ChannelError(f"telegram {what}: token rejected", retryable=False, status=401) from exc
    except ChatMigrated as exc:
        raise ChannelError(
            f"telegram {what}: the group became supergroup {exc.new_chat_id}", retryable=False, status=400
        ) from exc
    except (TimedOut, NetworkError) as exc:
        raise ChannelError(f"telegram {what}: {exc.message}", retryable=True) from exc
    except TelegramError as exc:
        raise ChannelError(f"telegram {what}: {exc.message}", retryable=True) from exc


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


async def probe_bot(name: str, section: dict[str, Any], model: type[TelegramConfig], *, timeout: float) -> Check:
    """``getMe`` with the section's token: the bot's username, or why it failed (``Probing``)."""
    config = validated(model, name, section)
    if isinstance(config, Check):
        return config
    request = HTTPXRequest(connect_timeout=timeout, read_timeout=timeout, write_timeout=timeout, pool_timeout=timeout)
    bot = Bot(config.token.get_secret_value(), base_url=config.base_url, request=request)
    try:
        async with asyncio.timeout(timeout):
            with map_errors("getMe"):
                try:
                    user = await bot.get_me()
                finally:
                    await request.shutdown()
    except TimeoutError as exc:
        return failed(name, ChannelError(str(exc)), url=config.base_url, key="token", refused=False)
    except ChannelError as exc:
        return failed(name, exc, url=config.base_url, key="token", refused=exc.status in (401, 403, 404))
    return Check(f"channel {name}", "ok", f"bot @{user.username} (id {user.id})")
