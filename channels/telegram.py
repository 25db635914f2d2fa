"""Telegram channel on python-telegram-bot v22 (``Bot`` only, no ``Updater``).

Ingress keeps the hub's rule "commit first, acknowledge second" (docs/PLATFORMS.md G1, G2, T1): PTB's
``Updater`` confirms a batch on its next poll while handlers may not have run, so we drive
``getUpdates`` ourselves: every update of a batch is converted and ``await inbox(...)``-ed
before the next call's ``offset`` confirms it. We start without an offset so the backlog
Telegram kept while we were down is processed, and never drop pending updates. Update ids can
jump ("chosen randomly after a week"), so redeliveries are recognised by a bounded set of seen
ids (and by the store's ``(channel, platform_id)`` key), never by a ``> last_id`` check, and
the offset is dropped once a poll comes back empty: it has confirmed everything by then, and a
stale one would confirm (drop) new updates whose ids restarted below it.

Webhook mode mounts ``POST <webhook_path>`` on the hub's server: the secret header is compared
in constant time (PTB's own handler uses ``!=`` and logs the wrong value), and 200 is returned
only after the inbox committed the update. ``stop`` leaves the webhook set, so Telegram keeps
(and retries) updates while the hub is down.

``/start`` is answered here with a short greeting (the hub has no such command); other
commands go to the inbox as ``kind="command"``.

``channels._telegram_parse`` turns updates into inbounds; ``channels._telegram_api`` holds the
sending calls (``TelegramOps``) and the mapping of PTB's errors.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import re
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import replace
from typing import Annotated, Any, ClassVar, Literal

from aiohttp import web
from pydantic import ConfigDict, Field, SecretStr, model_validator
from telegram import Bot, BotCommand, Update
from telegram.error import (
    Conflict,
    Forbidden,
    InvalidToken,
    RetryAfter,
    TelegramError,
    TimedOut,
)
from telegram.request import HTTPXRequest

from channels._telegram_api import TelegramOps, is_group, map_errors, probe_bot, retry_seconds
from channels._telegram_parse import ALLOWED_UPDATES, Parsed, parse_update, update_key, with_attachment
from channels.access import NUMERIC_IDS, AccessConfig, AccessPolicy, section_warnings
from channels.delivery import Deliverer
from channels.ratelimit import RateLimiter, RateLimits, levels_default_to
from hub.agent import Check
from hub.backoff import Backoff
from hub.channel import Capabilities, ChannelContext, Inbox, Manifest
from hub.config import StrictBool
from hub.errors import ChannelError
from hub.logs import RedactingFilter
from hub.messages import Delivery, Inbound, Outbound

__all__ = ["TelegramChannel", "TelegramConfig"]

logger = logging.getLogger(__name__)

_SECRET_RE = re.compile(r"[A-Za-z0-9_-]{1,256}")
_SEEN_MAX = 10_000
_COMMAND_RE = re.compile(r"[a-z0-9_]{1,32}")
_GREETING = "Hello! I'm an AutoHands assistant. Just write to me; send /help to see the commands."
_UNSUPPORTED = "Sorry, I can't read {what} yet. Please send text, or a text file (.txt, .md, .csv, .json …)."
_TOO_BIG = "That file is too large for me ({size} KB; the limit is {limit} KB)."
_LOGGERS = ("telegram", "httpx", "httpcore", __name__)


def utf16_len(text: str) -> int:
    """Telegram counts message length in UTF-16 code units (an emoji outside the BMP is two)."""
    return len(text.encode("utf-16-le")) // 2


class TelegramConfig(AccessConfig):
    """``[channels.telegram]``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: StrictBool = False
    """Run this bot when the hub starts; the table is validated only when ``true``, so ``false``
    keeps its settings without needing the token."""
    token: SecretStr
    """The bot token from @BotFather (``123456789:AAH…``); write it ``${TELEGRAM_BOT_TOKEN}``."""
    base_url: str = "https://api.telegram.org/bot"
    """Bot API base URL (the token is appended); change it for a self-hosted Bot API server or a
    local fake."""
    base_file_url: str = "https://api.telegram.org/file/bot"
    """Base URL of file downloads (documents; the token is appended); change it with ``base_url``."""
    mode: Literal["polling", "webhook"] = "polling"
    """``polling``: the hub asks Telegram for updates (no public URL; a webhook is removed at
    start). ``webhook``: Telegram posts them to the hub's server; needs ``webhook_url`` and
    ``webhook_secret``."""
    webhook_url: str = ""
    """The public HTTPS URL Telegram posts to (ends with ``webhook_path``)."""
    webhook_path: str = "/telegram/webhook"
    """The ``POST`` route on the hub's server in ``webhook`` mode; change it when a proxy forwards
    another path, or for a second bot."""
    webhook_secret: SecretStr | None = None
    """Required in ``webhook`` mode (1–256 of ``A-Z a-z 0-9 _ -``): Telegram sends it with each
    update, and a request without it is refused (403)."""
    poll_timeout: int = Field(default=30, ge=0, le=50)
    """Long-poll seconds per ``getUpdates``."""
    poll_retry_first_seconds: float = Field(default=1.0, gt=0)
    """Pause after a failed ``getUpdates`` (network, 5xx, another poller, an update not
    recorded); it doubles per failure in a row up to ``poll_retry_max_seconds``."""
    poll_retry_max_seconds: float = Field(default=30.0, gt=0)
    """The longest such pause."""
    rate_limits: Annotated[RateLimits, levels_default_to(RateLimits.telegram())] = RateLimits.telegram()
    """Outbound buckets per chat, per group and per bot (docs/PLATFORMS.md T7, T8); a table
    sets the levels it names, e.g. ``per_chat = { per_second = 1.0, burst = 3 }``."""
    max_document_bytes: int = Field(default=1_000_000, ge=0, le=20_000_000)
    """Text-like documents up to this size are downloaded (the Bot API serves at most 20 MB)."""

    @model_validator(mode="after")
    def _check_webhook(self) -> TelegramConfig:
        if self.mode != "webhook":
            return self
        if not self.webhook_url:
            raise ValueError("mode = 'webhook' needs webhook_url (the public https URL Telegram posts to)")
        secret = self.webhook_secret.get_secret_value() if self.webhook_secret else ""
        if not _SECRET_RE.fullmatch(secret):
            raise ValueError("mode = 'webhook' needs webhook_secret: 1-256 characters from A-Z a-z 0-9 _ -")
        return self


def _token_redactor(token: str, webhook_secret: str) -> RedactingFilter:
    """A filter for the loggers that see the token (PTB and httpx log URLs that contain it)."""
    # A bot token is ``<bot id>:<secret>``; URLs may carry it percent-encoded (``%3A``), so the
    # secret half is redacted on its own as well.
    halves = [token.partition(":")[2]] if ":" in token else []
    return RedactingFilter([token, webhook_secret, *halves], min_length=4)


class TelegramChannel:
    """A Telegram bot: long polling (default) or webhook ingress, ``Deliverer`` egress."""

    config_model: ClassVar[type[TelegramConfig]] = TelegramConfig
    manifest: ClassVar[Manifest] = Manifest(
        id="telegram",
        name="Telegram",
        provides=("channel:telegram",),
        config=TelegramConfig,
        description="Telegram bot (python-telegram-bot): polling or webhook, edits, buttons, topics",
        permissions=("network",),
        secrets=("token", "webhook_secret"),
    )
    capabilities = Capabilities(max_length=4096, dialect="telegram_html", edits=True, buttons=True, typing=True)

    @classmethod
    async def probe(cls, name: str, section: dict[str, Any], *, timeout: float) -> Check:
        """A live ``getMe`` with the section's token (``hub.extensions.Probing``)."""
        return await probe_bot(name, section, cls.config_model, timeout=timeout)

    def __init__(self, name: str, config: TelegramConfig, context: ChannelContext) -> None:
        self.name = name
        self._config = config
        self._context = context
        token = config.token.get_secret_value()
        secret = config.webhook_secret.get_secret_value() if config.webhook_secret else ""
        self._redactor = _token_redactor(token, secret)
        self._redactor.install(*_LOGGERS)  # before Bot(): its constructor logs the URLs with the token
        self._bot = Bot(
            token,
            base_url=config.base_url,
            base_file_url=config.base_file_url,
            request=HTTPXRequest(connection_pool_size=16),
            # A separate connection for the long poll, so sends never queue behind it.
            get_updates_request=HTTPXRequest(connection_pool_size=1, read_timeout=10.0),
        )
        self._access = AccessPolicy(config, channel=name, pairing=context.pairing, ids=NUMERIC_IDS)
        self._poll_backoff = Backoff(first=config.poll_retry_first_seconds, cap=config.poll_retry_max_seconds)
        self._deliverer = self._new_deliverer()
        self._inbox: Inbox | None = None
        self.problem: str | None = None
        """Set when polling stopped for good (see ``Channel``); ``/healthz`` reports it."""
        self._poller: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._offset: int | None = None
        self._bot_id = 0
        self._username = ""
        if config.mode == "webhook":
            context.add_route("POST", config.webhook_path, self._handle_webhook)

    @classmethod
    def config_warnings(cls, name: str, section: dict[str, Any]) -> list[str]:
        """``hub.extensions.Advising``: nobody can use the bot; usernames where ids are safer."""
        return section_warnings(TelegramConfig, name, section, ids=NUMERIC_IDS)

    def _new_deliverer(self) -> Deliverer:
        limiter = RateLimiter(self._config.rate_limits)
        return Deliverer(TelegramOps(self._bot), self.capabilities, limiter, is_group=is_group, measure=utf16_len)

    # ------------------------------------------------------------------ lifecycle
    async def start(self, inbox: Inbox) -> None:
        """Connect (getMe), register commands, then poll or set the webhook; returns once running."""
        if self._inbox is not None:
            raise RuntimeError(f"telegram channel {self.name!r} is already started")
        self._redactor.install(*_LOGGERS)
        try:
            await self._connect()
        except BaseException:
            await self._shutdown_bot()
            raise
        self._inbox = inbox
        self.problem = None
        self._stopping.clear()
        if self._config.mode == "polling":
            self._poller = asyncio.create_task(self._poll_loop(), name=f"telegram-poll:{self.name}")
        logger.info("telegram %s: started as @%s (%s)", self.name, self._username, self._config.mode)

    async def _connect(self) -> None:
        try:
            with map_errors("getMe"):
                await self._bot.initialize()
        except ChannelError as exc:
            if exc.status == 401:
                raise ChannelError(
                    f"telegram {self.name}: the bot token was rejected (401 Unauthorized); "
                    f"check channels.{self.name}.token",
                    retryable=False,
                    status=401,
                ) from None
            raise
        self._bot_id, self._username = self._bot.id, self._bot.username
        with map_errors("setMyCommands"):
            await self._bot.set_my_commands(self._commands())
        if self._config.mode == "webhook":
            secret = self._config.webhook_secret
            with map_errors("setWebhook"):
                await self._bot.set_webhook(
                    self._config.webhook_url,
                    secret_token=secret.get_secret_value() if secret else None,
                    allowed_updates=list(ALLOWED_UPDATES),
                    drop_pending_updates=False,
                )
        else:
            with map_errors("deleteWebhook"):  # getUpdates answers 409 while a webhook is set
                await self._bot.delete_webhook(drop_pending_updates=False)

    def _commands(self) -> list[BotCommand]:
        commands = [BotCommand("start", "Start talking to the assistant")]
        for info in self._context.commands:
            if not _COMMAND_RE.fullmatch(info.name) or info.name == "start":
                logger.warning("telegram %s: command /%s is not a valid Telegram command name", self.name, info.name)
                continue
            commands.append(BotCommand(info.name, (info.description or info.name)[:256]))
        return commands[:100]

    async def stop(self) -> None:
        """Stop polling, confirm what was committed, and close the HTTP clients."""
        if self._inbox is None:
            return
        self._stopping.set()
        if self._poller is not None:
            self._poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._poller
            self._poller = None
            await self._confirm_handled()
        await self._deliverer.aclose()
        self._deliverer = self._new_deliverer()
        await self._shutdown_bot()
        self._inbox = None
        logger.info("telegram %s: stopped", self.name)

    async def _confirm_handled(self) -> None:
        # Like PTB on a graceful stop: one short call whose offset confirms every committed update.
        if self._offset is None:
            return
        try:
            await self._bot.get_updates(offset=self._offset, limit=1, timeout=0)
        except TelegramError as exc:
            logger.info("telegram %s: could not confirm the last updates (%s); they will be deduped", self.name, exc)

    async def _shutdown_bot(self) -> None:
        try:
            await self._bot.shutdown()
        finally:
            self._redactor.uninstall()

    async def __aenter__(self) -> TelegramChannel:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # ------------------------------------------------------------------ egress
    async def send(self, msg: Outbound) -> Delivery:
        """Deliver through the shared ``Deliverer``; raises ``ChannelError`` (see ``_telegram_api.map_errors``)."""
        if self._inbox is None:
            raise ChannelError(f"telegram channel {self.name!r} is not started", retryable=True)
        return await self._deliverer.send(msg)

    # ------------------------------------------------------------------ ingress: polling
    async def _poll_loop(self) -> None:
        failures = 0  # in a row
        while not self._stopping.is_set():
            try:
                updates = await self._bot.get_updates(
                    offset=self._offset, timeout=self._config.poll_timeout, allowed_updates=ALLOWED_UPDATES
                )
            except RetryAfter as exc:
                await self._sleep(retry_seconds(exc))
                continue
            except Conflict:
                logger.warning(
                    "telegram %s: another instance is polling this token (409 Conflict); backing off", self.name
                )
                failures += 1
                await self._sleep(self._poll_backoff.delay(failures))
                continue
            except (InvalidToken, Forbidden):
                self.problem = f"the bot token was rejected; polling stopped (check channels.{self.name}.token)"
                logger.error(
                    "telegram %s: the bot token was rejected; polling stopped. Check channels.%s.token and restart.",
                    self.name,
                    self.name,
                )
                return
            except TimedOut:
                continue  # the long poll outlived the read timeout: poll again at once
            except TelegramError as exc:  # NetworkError, 5xx
                logger.warning("telegram %s: getUpdates failed (%s); retrying", self.name, exc)
                failures += 1
                await self._sleep(self._poll_backoff.delay(failures))
                continue
            failures = 0
            if not updates:
                # The offset has confirmed everything: poll without one from now on. Kept, it
                # would also confirm (and so drop) the next update if Telegram restarted its
                # numbering below it after a week without updates (docs/PLATFORMS.md T3).
                self._offset = None
                continue
            if not await self._process_batch(updates):
                # Not all acknowledged: the next getUpdates starts at the first unrecorded one.
                failures += 1
                await self._sleep(self._poll_backoff.delay(failures))

    async def _process_batch(self, updates: Sequence[Update]) -> bool:
        """Record a batch: chats concurrently (so their commits share one group commit instead
        of one fsync each), each chat's updates in order. The offset follows the longest
        recorded prefix of the batch as it grows. Returns whether all were recorded."""
        by_chat: dict[object, list[Update]] = {}
        for update in updates:
            chat = update.effective_chat.id if update.effective_chat else None
            by_chat.setdefault(chat, []).append(update)
        recorded: set[int] = set()
        order = [u.update_id for u in updates]
        confirmed = 0

        def advance() -> None:
            nonlocal confirmed
            while confirmed < len(order) and order[confirmed] in recorded:
                self._offset = order[confirmed] + 1
                confirmed += 1

        async def one_chat(chat_updates: list[Update]) -> None:
            for update in chat_updates:
                try:
                    await self._process(update)
                except Exception:
                    logger.exception(
                        "telegram %s: update %d could not be recorded; will retry", self.name, update.update_id
                    )
                    return  # the rest of this chat waits, to keep its order
                recorded.add(update.update_id)
                advance()

        await asyncio.gather(*(one_chat(u) for u in by_chat.values()))
        return confirmed == len(order)

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), timeout=seconds)

    # ------------------------------------------------------------------ ingress: webhook
    async def _handle_webhook(self, request: web.Request) -> web.Response:
        expected = self._config.webhook_secret
        presented = request.headers.get("X-Telegram-Bot-Api-Secret-Token", "")
        if expected is None or not hmac.compare_digest(presented.encode(), expected.get_secret_value().encode()):
            logger.warning(
                "telegram %s: webhook request with a missing or wrong secret token from %s", self.name, request.remote
            )
            return web.Response(status=403, text="forbidden")
        if self._inbox is None:
            return web.Response(status=503, text="not started")  # Telegram will retry
        try:
            data = await request.json()
            update = Update.de_json(data, self._bot)
        except Exception:
            logger.warning("telegram %s: webhook body is not a Telegram update; ignored", self.name)
            return web.Response(status=400, text="bad update")
        try:
            await self._process(update)
        except Exception:
            logger.exception("telegram %s: update %d could not be recorded", self.name, update.update_id)
            return web.Response(status=500, text="not recorded")  # Telegram retries later
        return web.Response(text="ok")

    # ------------------------------------------------------------------ one update
    async def _process(self, update: Update) -> None:
        """Record ``update`` through the inbox (or answer it directly); raises if the inbox failed."""
        key = update_key(update)
        if key in self._seen:
            logger.debug("telegram %s: update %d seen before; skipped", self.name, update.update_id)
            return
        try:
            parsed = parse_update(update, channel=self.name, bot_username=self._username, bot_id=self._bot_id)
        except Exception:  # a malformed update must not block the queue forever
            logger.exception("telegram %s: update %d could not be understood; skipped", self.name, update.update_id)
            parsed = None
        if parsed is not None:
            try:
                await self._dispatch(parsed)
            finally:
                if parsed.callback_id:
                    await self._answer_callback(parsed.callback_id)
        self._seen[key] = None
        if len(self._seen) > _SEEN_MAX:
            self._seen.popitem(last=False)

    async def _dispatch(self, parsed: Parsed) -> None:
        inbound = parsed.inbound
        chat, direct = inbound.conversation.chat, inbound.direct
        sender = self._access.with_admin(inbound.sender)
        is_command = inbound.kind == "command"
        if inbound.kind != "button" and not self._access.addressed(
            direct, parsed.mentioned, parsed.replied_to_bot, is_command, chat
        ):
            return  # group chatter not meant for the bot never reaches the store (nor the log)
        verdict = await self._access.check(sender, chat, direct)
        if verdict.reply is not None:
            await self._reply_directly(inbound, verdict.reply)
        if not verdict.allowed:
            return
        inbound = replace(inbound, sender=sender)
        if inbound.kind == "command" and inbound.command == "start":
            await self._reply_directly(inbound, _GREETING)
            return
        if parsed.unsupported is not None:
            what = "documents of this type" if parsed.unsupported == "document" else f"{parsed.unsupported}s"
            await self._reply_directly(inbound, _UNSUPPORTED.format(what=what.replace("_", " ")))
            return
        if parsed.document is not None:
            attached = await self._attach(parsed, inbound)
            if attached is None:
                return
            inbound = attached
        assert self._inbox is not None
        await self._inbox(inbound)

    async def _attach(self, parsed: Parsed, inbound: Inbound) -> Inbound | None:
        doc = parsed.document
        assert doc is not None
        limit = self._config.max_document_bytes
        if (doc.file_size or 0) > limit:
            await self._reply_directly(inbound, _TOO_BIG.format(size=(doc.file_size or 0) // 1024, limit=limit // 1024))
            return None
        try:
            with map_errors("getFile"):
                file = await doc.get_file()
                data = bytes(await file.download_as_bytearray())
        except ChannelError as exc:
            if exc.retryable:
                raise  # not acknowledged: the update comes back and the download is retried
            logger.warning("telegram %s: document could not be downloaded (%s)", self.name, exc)
            await self._reply_directly(inbound, "Sorry, I could not download that file.")
            return None
        return with_attachment(inbound, doc, data[:limit].decode("utf-8", errors="replace"))

    async def _reply_directly(self, inbound: Inbound, text: str) -> None:
        """A fixed answer that does not go through the hub (refusals, greetings, notes)."""
        out = Outbound(
            conversation=inbound.conversation,
            text=text,
            reply_to_platform_id=inbound.reply_to_platform_id,
            format="plain",
        )
        try:
            await self._deliverer.send(out)
        except ChannelError as exc:
            logger.warning("telegram %s: direct reply failed (%s)", self.name, exc)

    async def _answer_callback(self, callback_id: str) -> None:
        # Always answered, or the user's client shows a spinner on the button.
        try:
            with map_errors("answerCallbackQuery"):
                await self._bot.answer_callback_query(callback_id)
        except ChannelError as exc:
            logger.debug("telegram %s: callback query not answered (%s)", self.name, exc)
