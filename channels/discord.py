"""Discord on discord.py: gateway in, REST out through the shared ``Deliverer``.

Inbound: guild messages are passed on only when they mention the bot or reply to it (the
group policy of ``AccessConfig`` decides), DMs always; a thread is its own conversation
(``chat`` = parent channel, ``thread`` = thread id) and replies are posted *into the thread*,
since a Discord thread is a channel. Button clicks arrive as ``Inbound(kind="button")`` after
the interaction is deferred (Discord's 3-second deadline).

Discord cannot be acknowledged, so the adapter remembers the last message id seen per active
channel in ``context.state``; after a session that could not RESUME (every READY), it reads the
channel history since then and feeds what it missed to the inbox, which deduplicates on the
message id. At most the newest ``backfill_limit`` are read; if more were posted, the channel is
told which stretch was not read (and the log says so), so nothing is lost silently. Liveness:
discord.py's own keep-alive closes and RESUMEs a connection that stopped answering heartbeats
(``heartbeat_timeout``); in addition every message we post must come back as a gateway
MESSAGE_CREATE within ``liveness_timeout_seconds``, else the gateway is deemed deaf and the
connection is closed (code 4000) so discord.py RESUMEs and the missed events replay.

Outbound: every post carries ``nonce`` = the outbound id (+ part number) and discord.py adds
``enforce_nonce`` itself, so a retried send returns the first message instead of a second one.
``allowed_mentions`` lets a reply ping only the user replied to: model text cannot ping
``@everyone``, roles or users.

``channels._discord_parse`` turns messages and clicks into inbounds; ``channels._discord_api``
holds the REST calls of sending (``DiscordOps``) and the mapping of discord.py's errors.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
from collections import OrderedDict
from typing import Annotated, Any, ClassVar

import discord
import yarl
from discord.gateway import DiscordWebSocket
from discord.http import Route
from pydantic import ConfigDict, Field, SecretStr

from channels._discord_api import DiscordOps, map_errors, probe_identity
from channels._discord_parse import (
    ChannelInfo,
    button_inbound,
    channel_info,
    mentions_bot,
    message_inbound,
    replies_to_bot,
)
from channels.access import NUMERIC_IDS, AccessConfig, AccessPolicy, section_warnings
from channels.delivery import Deliverer
from channels.ratelimit import RateLimiter, RateLimits, levels_default_to
from hub.agent import Check
from hub.channel import Capabilities, ChannelContext, Inbox, Manifest
from hub.config import StrictBool
from hub.errors import ChannelError
from hub.messages import Delivery, Inbound, Outbound

logger = logging.getLogger(__name__)

_INDEX_KEY = "active_channels"
_SEEN_MAX = 10_000
_ECHOED_MAX = 256


class DiscordConfig(AccessConfig):
    """``[channels.discord]``; ``allow_chats`` are channel ids, ``allow_users`` user ids."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: StrictBool = False
    """Run this bot when the hub starts; the table is validated only when ``true``, so ``false``
    keeps its settings without needing the token."""
    token: SecretStr
    """The bot's token (Developer Portal → your application → Bot → Reset Token); write it
    ``${DISCORD_BOT_TOKEN}``."""
    api_base: str = "https://discord.com/api/v10"
    """REST base URL (process-global in discord.py; see ``point_sdk_at``)."""
    gateway_url: str = "wss://gateway.discord.gg"
    """Gateway WebSocket URL (process-global in discord.py; see ``point_sdk_at``)."""
    allow_guilds: list[str] = Field(default_factory=list)
    """Guild ids served; empty serves every guild the bot is in."""
    liveness_timeout_seconds: float = Field(default=60.0, gt=0)
    """No frame (heartbeat ACK included), or no gateway echo of a message we posted, for this
    long → reconnect. Must exceed the gateway's heartbeat interval (about 41 s on Discord)."""
    identify_delay_seconds: float = Field(default=5.0, ge=0)
    """Pause before a re-IDENTIFY (discord.py's default, protecting the 1000/day IDENTIFY budget)."""
    guild_ready_timeout_seconds: float = Field(default=2.0, ge=0)
    """How long discord.py waits for GUILD_CREATEs after READY before it is ready."""
    backfill_limit: int = Field(default=100, ge=0, le=1000)
    """Most messages read back per channel after a session that could not resume (the newest;
    the channel is told about older ones). 0 turns the backfill off."""
    rate_limits: Annotated[RateLimits, levels_default_to(RateLimits.discord())] = RateLimits.discord()
    """Outbound buckets per channel and per bot; a table sets the levels it names, e.g.
    ``per_chat = { per_second = 1.0, burst = 5 }``."""


def point_sdk_at(api_base: str, gateway_url: str) -> None:
    """Point discord.py at ``api_base`` and ``gateway_url``: the one place the override lives.

    discord.py has no setting for either: REST URLs are built from the class attribute
    ``discord.http.Route.BASE`` and a plain ``Client`` connects (and reconnects after an
    INVALID_SESSION) to the class attribute ``DiscordWebSocket.DEFAULT_GATEWAY``. Both are
    **process-global**: every discord.py client in this process uses the last values set, so
    one process can serve one Discord endpoint (two bot tokens on the same endpoint are fine).
    """
    base = api_base.rstrip("/")
    if Route.BASE not in (base, "https://discord.com/api/v10"):
        logger.warning("discord: REST base changed from %s to %s for the whole process", Route.BASE, base)
    Route.BASE = base
    DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(gateway_url.rstrip("/") + "/")


class _Client(discord.Client):
    """A discord.Client whose events go to the owning ``DiscordChannel``."""

    def __init__(self, owner: DiscordChannel, config: DiscordConfig) -> None:
        intents = discord.Intents.none()
        intents.guilds = intents.guild_messages = intents.dm_messages = intents.message_content = True
        # A text bot never joins voice: the SDK's start-up warnings about voice libraries
        # (PyNaCl, davey) would only alarm the operator.
        discord.VoiceClient.warn_nacl = discord.VoiceClient.warn_dave = False
        super().__init__(
            intents=intents,
            heartbeat_timeout=config.liveness_timeout_seconds,
            guild_ready_timeout=config.guild_ready_timeout_seconds,
            allowed_mentions=discord.AllowedMentions.none(),
            max_ratelimit_timeout=30.0,
            max_messages=None,
            chunk_guilds_at_startup=False,
        )
        self._owner = owner
        self._identify_delay = config.identify_delay_seconds

    async def before_identify_hook(self, shard_id: int | None, *, initial: bool = False) -> None:
        if not initial:
            await asyncio.sleep(self._identify_delay)

    async def on_ready(self) -> None:
        await self._owner._on_ready()

    async def on_resumed(self) -> None:
        logger.info("discord %s: session resumed", self._owner.name)

    async def on_message(self, message: discord.Message) -> None:
        await self._owner._on_message(message)

    async def on_interaction(self, interaction: discord.Interaction) -> None:
        await self._owner._on_interaction(interaction)


class DiscordChannel:
    """The Discord adapter (``autohands.channels`` entry point ``discord``)."""

    config_model: ClassVar[type[DiscordConfig]] = DiscordConfig
    manifest: ClassVar[Manifest] = Manifest(
        id="discord",
        name="Discord",
        provides=("channel:discord",),
        config=DiscordConfig,
        description="Discord bot on discord.py (gateway + REST)",
        permissions=("network",),
        secrets=("token",),
    )
    capabilities = Capabilities(max_length=2000, dialect="discord_markdown", edits=True, buttons=True, typing=True)

    @classmethod
    async def probe(cls, name: str, section: dict[str, Any], *, timeout: float) -> Check:
        """A live ``users/@me`` with the section's token (``hub.extensions.Probing``)."""
        return await probe_identity(name, section, cls.config_model, timeout=timeout)

    def __init__(self, name: str, config: DiscordConfig, context: ChannelContext) -> None:
        self.name = name
        self._config = config
        self._context = context
        self._access = AccessPolicy(config, channel=name, pairing=context.pairing, ids=NUMERIC_IDS)
        self._client: _Client | None = None
        self._task: asyncio.Task[None] | None = None
        self._inbox: Inbox | None = None
        self._ready = asyncio.Event()
        self._readies = 0
        self._active: dict[str, ChannelInfo] = {}
        self._last_seen: dict[str, int] = {}
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._echoes: dict[int, asyncio.TimerHandle] = {}
        self._echoed: OrderedDict[int, None] = OrderedDict()
        self._backfill: asyncio.Task[None] | None = None
        self._deliverer: Deliverer | None = None
        self.problem: str | None = None
        """Set when the gateway connection ended for good (see ``Channel``); ``/healthz`` reports it."""

    @classmethod
    def config_warnings(cls, name: str, section: dict[str, Any]) -> list[str]:
        """``hub.extensions.Advising``: nobody can use the bot; usernames where ids are safer."""
        return section_warnings(DiscordConfig, name, section, ids=NUMERIC_IDS)

    # ------------------------------------------------------------------ lifecycle
    async def start(self, inbox: Inbox) -> None:
        """Log in, connect to the gateway and return once READY (guilds loaded)."""
        if self._task is not None:
            raise RuntimeError(f"discord channel {self.name!r} is already started")
        self._inbox = inbox
        await self._load_index()
        point_sdk_at(self._config.api_base, self._config.gateway_url)
        if self._config.liveness_timeout_seconds < 45 and "discord.com" in self._config.api_base:
            logger.warning(
                "discord %s: liveness_timeout_seconds below Discord's ~41 s heartbeat interval "
                "makes quiet connections reconnect needlessly",
                self.name,
            )
        client = self._client = _Client(self, self._config)
        ops = DiscordOps(client, self._expect_echo)
        self._deliverer = Deliverer(ops, self.capabilities, RateLimiter(self._config.rate_limits))
        self._task = asyncio.create_task(self._run(client), name=f"discord:{self.name}")
        ready = asyncio.create_task(self._ready.wait(), name=f"discord:{self.name}:ready")
        try:
            await asyncio.wait({self._task, ready}, return_when=asyncio.FIRST_COMPLETED)
        except BaseException:  # cancelled while connecting (the hub stops during a start retry)
            ready.cancel()
            await self.stop()
            raise
        if not ready.done():
            ready.cancel()
            error = self._task.exception()
            self._task = None
            await client.close()
            raise error or ChannelError("discord: the client stopped before READY", retryable=True)
        self.problem = None
        self._task.add_done_callback(self._on_client_end)
        logger.info("discord %s: connected as %s", self.name, client.user)

    def _on_client_end(self, task: asyncio.Task[None]) -> None:
        # discord.py reconnects through network trouble by itself; its task ends early only
        # when the gateway refuses it for good (token reset, intents withdrawn). Not silently.
        if task is not self._task or task.cancelled():
            return
        error = task.exception()
        self.problem = f"the gateway connection ended: {error or 'closed'}"
        logger.error("discord %s: %s; restart the hub once fixed", self.name, self.problem)

    async def _run(self, client: _Client) -> None:
        token = self._config.token.get_secret_value()
        try:
            with map_errors("login"):  # unreachable API: one clear line, not a traceback
                await client.start(token)
        except discord.LoginFailure:
            raise ChannelError(
                "discord: the bot token was rejected; check channels.discord.token",
                retryable=False,
                status=401,
            ) from None
        except discord.PrivilegedIntentsRequired:
            raise ChannelError(
                "discord: enable the Message Content intent for this bot in the Developer "
                "Portal (Bot → Privileged Gateway Intents)",
                retryable=False,
            ) from None

    async def stop(self) -> None:
        if self._task is None:
            return
        task, self._task = self._task, None  # first: its end is now expected (_on_client_end)
        for handle in self._echoes.values():
            handle.cancel()
        self._echoes.clear()
        if self._backfill is not None:
            self._backfill.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._backfill
        if self._deliverer is not None:
            await self._deliverer.aclose()
        assert self._client is not None
        await self._client.close()
        with contextlib.suppress(ChannelError):
            await task
        logger.info("discord %s: stopped", self.name)

    async def send(self, msg: Outbound) -> Delivery:
        if self._deliverer is None:
            raise RuntimeError(f"discord channel {self.name!r} is not started")
        return await self._deliverer.send(msg)

    # ------------------------------------------------------------------ gateway events
    async def _on_ready(self) -> None:
        self._readies += 1
        if self._readies > 1:
            logger.info("discord %s: new session (could not resume); reading missed history", self.name)
        # Every READY is a session that replays nothing: the first after a restart, later ones
        # after an INVALID_SESSION. Read what the active channels got meanwhile.
        if self._active and (self._backfill is None or self._backfill.done()):
            self._backfill = asyncio.create_task(self._read_missed(), name=f"discord:{self.name}:backfill")
        self._ready.set()

    async def _on_message(self, message: discord.Message) -> None:
        client = self._client
        if client is None or client.user is None:
            return
        if message.author.id == client.user.id:
            handle = self._echoes.pop(message.id, None)
            if handle is not None:
                handle.cancel()
            else:  # the echo can beat the REST answer that tells us the id
                self._echoed[message.id] = None
                if len(self._echoed) > _ECHOED_MAX:
                    self._echoed.popitem(last=False)
            return
        await self._handle(message)

    async def _handle(self, message: discord.Message) -> None:
        key = str(message.id)
        if key in self._seen:
            logger.debug("discord %s: message %s seen before", self.name, key)
            return
        assert self._client is not None and self._client.user is not None
        bot_id = self._client.user.id
        guild_id = message.guild.id if message.guild else getattr(message.channel, "guild_id", None)
        info = self._active.get(str(message.channel.id)) or channel_info(message.channel, guild_id)
        inbound = None
        if self._guild_allowed(info):
            inbound = message_inbound(self.name, message, info, bot_id=bot_id)
        self._remember(key)  # before any await: discord.py runs each event in its own task
        try:
            if inbound is not None and self._addressed(inbound, message, bot_id) and await self._admit(inbound):
                await self._mark_active(info)
            await self._mark_seen(info.id, message.id)
        except Exception:
            # Not recorded: forget it so a later delivery or the next backfill tries again.
            self._seen.pop(key, None)
            logger.exception("discord %s: message %s could not be recorded", self.name, key)

    def _addressed(self, inbound: Inbound, message: discord.Message, bot_id: int) -> bool:
        return self._access.addressed(
            inbound.direct,
            mentions_bot(message, bot_id),
            replies_to_bot(message, bot_id),
            inbound.kind == "command",
            inbound.conversation.chat,
        )

    def _guild_allowed(self, info: ChannelInfo) -> bool:
        allowed = self._config.allow_guilds
        return info.guild_id is None or not allowed or info.guild_id in allowed

    async def _on_interaction(self, interaction: discord.Interaction) -> None:
        if interaction.type is not discord.InteractionType.component or interaction.channel_id is None:
            return
        # Discord invalidates the token after 3 s without an initial response: defer first
        # (type 6, "deferred update": the message stays as it is), then record the click.
        try:
            await interaction.response.defer()
        except discord.HTTPException as exc:
            logger.warning("discord %s: could not acknowledge interaction %s: %s", self.name, interaction.id, exc)
        cid = str(interaction.channel_id)
        info = self._active.get(cid) or channel_info(interaction.channel, interaction.guild_id)
        inbound = button_inbound(self.name, interaction, info)
        if inbound is not None and self._guild_allowed(info):
            await self._admit(inbound)

    async def _admit(self, inbound: Inbound) -> bool:
        """Access policy, then commit through the inbox. True when the hub took it.

        The inbox deduplicates on ``(channel, platform_id)``, so a redelivery returns False and
        is not answered twice; it still counts as taken here (the channel is active)."""
        assert self._inbox is not None
        verdict = await self._access.check(inbound.sender, inbound.conversation.chat, inbound.direct)
        if verdict.reply is not None:
            await self._refuse(inbound, verdict.reply)
        if not verdict.allowed:
            return False
        inbound = dataclasses.replace(inbound, sender=self._access.with_admin(inbound.sender))
        if not await self._inbox(inbound):
            logger.debug("discord %s: redelivery of %s ignored", self.name, inbound.platform_id)
        return True

    async def _refuse(self, inbound: Inbound, text: str) -> None:
        assert self._client is not None
        ops = DiscordOps(self._client, self._expect_echo)
        try:
            await ops.post(inbound.conversation, text, rich=False, reply_to=inbound.reply_to_platform_id)
        except ChannelError as exc:
            logger.warning("discord %s: could not send a refusal: %s", self.name, exc)

    def _remember(self, key: str) -> None:
        self._seen[key] = None
        if len(self._seen) > _SEEN_MAX:
            self._seen.popitem(last=False)

    # ------------------------------------------------------------------ liveness
    def _expect_echo(self, message_id: int) -> None:
        """A message we posted must come back on the gateway; if not, the gateway is deaf."""
        if self._echoed.pop(message_id, False) is None:
            return  # already came back
        loop = asyncio.get_running_loop()
        self._echoes[message_id] = loop.call_later(self._config.liveness_timeout_seconds, self._deaf, message_id)

    def _deaf(self, message_id: int) -> None:
        self._echoes.pop(message_id, None)
        for handle in self._echoes.values():
            handle.cancel()
        self._echoes.clear()
        ws = self._client.ws if self._client is not None else None
        if ws is None or not ws.open:
            return
        logger.warning(
            "discord %s: the gateway did not deliver our own message within %.1f s; reconnecting",
            self.name,
            self._config.liveness_timeout_seconds,
        )
        # Close code 4000 (not 1000/1001) keeps the session resumable: discord.py RESUMEs and the
        # gateway replays what it did not send.
        task = asyncio.create_task(ws.close(code=4000), name=f"discord:{self.name}:reconnect")
        task.add_done_callback(lambda t: t.cancelled() or t.exception())

    # ------------------------------------------------------------------ last seen + backfill
    async def _load_index(self) -> None:
        raw = await self._context.state.get(_INDEX_KEY)
        try:
            entries = json.loads(raw) if raw else []
            for entry in entries:
                info = ChannelInfo(
                    id=str(entry["id"]), guild_id=entry.get("guild_id"), parent_id=entry.get("parent_id")
                )
                self._active[info.id] = info
                last = await self._context.state.get(f"last_seen:{info.id}")
                if last and last.isdigit():
                    self._last_seen[info.id] = int(last)
        except (ValueError, KeyError, TypeError):
            logger.warning("discord %s: the stored channel index is unreadable; starting afresh", self.name)
            self._active.clear()

    async def _mark_active(self, info: ChannelInfo) -> None:
        if info.id in self._active:
            return
        self._active[info.id] = info
        entries = [{"id": i.id, "guild_id": i.guild_id, "parent_id": i.parent_id} for i in self._active.values()]
        await self._context.state.set(_INDEX_KEY, json.dumps(entries))

    async def _mark_seen(self, channel_id: str, message_id: int) -> None:
        if channel_id not in self._active or message_id <= self._last_seen.get(channel_id, 0):
            return
        self._last_seen[channel_id] = message_id
        await self._context.state.set(f"last_seen:{channel_id}", str(message_id))

    async def _read_missed(self) -> None:
        for info in list(self._active.values()):
            after = self._last_seen.get(info.id)
            if after is None:
                continue
            try:
                await self._read_channel(info, after)
            except ChannelError as exc:
                logger.warning("discord %s: could not read history of channel %s: %s", self.name, info.id, exc)

    async def _read_channel(self, info: ChannelInfo, after: int) -> None:
        """Read back the newest ``backfill_limit`` messages after ``after``, oldest first; if
        there were more, say so in the channel first: they are not read, but not silently."""
        assert self._client is not None
        window = self._config.backfill_limit
        if window == 0:
            return
        # A partial channel needs no cache (DMs, threads not yet loaded); ``info`` says what it is.
        guild_id = int(info.guild_id) if info.guild_id else None
        channel = self._client.get_partial_messageable(int(info.id), guild_id=guild_id)
        missed: list[discord.Message] = []
        with map_errors("read history"):
            async for message in channel.history(limit=window + 1):  # newest first
                if message.id <= after:
                    break
                missed.append(message)
        if len(missed) > window:
            missed = missed[:window]
            await self._announce_unread(info, after, missed[-1])
        for message in reversed(missed):
            if self._client.user is not None and message.author.id != self._client.user.id:
                await self._handle(message)
            else:
                await self._mark_seen(info.id, message.id)
        if missed:
            logger.info("discord %s: read %d missed message(s) in channel %s", self.name, len(missed), info.id)

    async def _announce_unread(self, info: ChannelInfo, after: int, oldest_read: discord.Message) -> None:
        first, last = discord.utils.snowflake_time(after), oldest_read.created_at
        logger.warning(
            "discord %s: more than %d messages arrived in channel %s while offline; those from %s "
            "to %s were not read back (the channel was told)",
            self.name,
            self._config.backfill_limit,
            info.id,
            first.isoformat(),
            last.isoformat(),
        )
        since, until = int(first.timestamp()), int(last.timestamp())
        text = (
            f"I was offline, and more messages were posted here than I can read back "
            f"(the latest {self._config.backfill_limit}). I did not read those from <t:{since}:f> to "
            f"<t:{until}:f>: if you asked me something then, please ask again."
        )
        assert self._client is not None
        try:
            await DiscordOps(self._client, self._expect_echo).post(info.conversation(self.name), text, rich=False)
        except ChannelError as exc:
            logger.warning("discord %s: could not announce the unread messages: %s", self.name, exc)


__all__ = ["DiscordChannel", "DiscordConfig", "point_sdk_at"]
