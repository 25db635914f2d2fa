"""Slack on slack-bolt's ``AsyncApp``: slash commands, mentions, DMs and Block Kit buttons.

Ingress (HTTP mode) is one route on the hub's aiohttp server, ``POST /slack/events``, for slash
commands, Events API callbacks and interactions alike. ``channels._slack_ingress`` checks the v0
signature on the raw bytes first (401 for a forged, replayed or unsigned request), then the
body's shape (400 for a signed but malformed one), each with at most one rate-limited warning
line, and only then hands the parsed body to Bolt. Bolt runs with
``process_before_response=True``: its default acks with 200 *before* the listener runs, so a
failed listener is never retried (docs/PLATFORMS.md G2, S2; bolt-python #1061). With it, Slack's 200
is sent only after ``inbox()`` returned, i.e. after the inbound was committed; a redelivery
(``X-Slack-Retry-Num``, Slack's SDK does not dedupe) is answered 200 and goes no further
because the inbox dedupes on ``event_id`` / ``cmd:<trigger_id>`` / ``act:<trigger_id>``.

Conversations: a slash command's is its channel and its user (``thread = "user:<id>"``, not a
Slack thread: the answer goes to the channel itself); a mention's is its thread (``thread_ts`` or
the mention's own ``ts``), answered in that thread; a DM is one conversation (a threaded DM
reply, its own). Channel messages without a mention are ignored unless the chat's
``group_policy`` is ``all`` (then answered in their thread); the ``message.channels`` copy of
a mention is always dropped in favour of its ``app_mention``. A follow-up in a thread needs a
new mention: Slack does not tell us, without a lookup, that a thread is one the bot is in.
Access (``channels.access``) runs before the inbox and matches member ids only (``user_name`` is
deprecated and not unique across workspaces): strangers get a pairing code (or the refusal, as
``dm_policy`` says) once in a DM, are ignored in channels, and get the same answer ephemerally,
seen by them alone, when they use the slash command.

Socket Mode (``mode = "socket"``) uses Bolt's ``AsyncSocketModeHandler``; the same listeners
run, and the envelope is acked after they return.

Replies go through ``channels.delivery.Deliverer`` with ``chat.postMessage`` / ``chat.update``
(``channels._slack_api``: the Web API calls and their errors; ``channels._slack_parse`` turns
payloads into inbounds).
Slash-command answers are posted with ``chat.postMessage`` into the command's channel rather
than through ``response_url``: a ``response_url`` takes only 5 posts in 30 minutes and its
messages cannot be edited with ``chat.update``, which progressive answers need. The price is
that the bot must be a member of that channel (Slack answers ``not_in_channel`` otherwise,
surfaced as a permanent ``ChannelError``).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import re
from typing import Annotated, Any, ClassVar, Literal, Protocol

from pydantic import ConfigDict, SecretStr, field_validator, model_validator
from slack_bolt.app.async_app import AsyncApp
from slack_bolt.authorization import AuthorizeResult
from slack_sdk.web.async_client import AsyncWebClient

from channels._slack_api import REFUSED_TOKEN, SlackOps, probe_app, slack_errors
from channels._slack_ingress import SlackIngress
from channels._slack_parse import BotIdentity, action_inbound, command_inbound, event_inbound, name_like_entries
from channels.access import AccessConfig, AccessPolicy, IdRule, section_warnings
from channels.delivery import Deliverer
from channels.formatting import render
from channels.ratelimit import RateLimiter, RateLimits, levels_default_to
from hub.agent import Check
from hub.channel import Capabilities, ChannelContext, Inbox, Manifest
from hub.config import StrictBool
from hub.errors import ChannelError, ConfigError
from hub.messages import Delivery, Inbound, Outbound

log = logging.getLogger(__name__)

EVENTS_PATH = "/slack/events"
SOCKET_CONNECT_TIMEOUT = 30.0

# Slack truncates `text` above 40,000 chars but recommends staying under 4,000, and the
# rendered mrkdwn (escapes included) is what is measured; 3,900 leaves room for the "(1/3)"
# part numbers the splitter adds. Button messages are cut further into 3,000-char sections.
MAX_LENGTH = 3900


SLACK_IDS = IdRule(
    lambda entry: not name_like_entries([entry]),
    names_hint=(
        "Slack users are matched by member id only (names are deprecated and not unique across "
        "workspaces). Find an id in Slack under the person's profile → ⋮ (More) → Copy member ID "
        "(it looks like U012AB3CD), or in the refusal or pairing message the bot sends them."
    ),
)
"""Slack member ids (``U…`` / ``W…``): a name in ``allow_users`` / ``admins`` matches nobody."""


class _SocketMode(Protocol):
    """What we use of Bolt's ``AsyncSocketModeHandler`` (imported only in Socket Mode; its
    methods are unannotated)."""

    async def connect_async(self) -> None: ...
    async def close_async(self) -> None: ...


class SlackConfig(AccessConfig):
    """``[channels.slack]``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: StrictBool = False
    """Run this app when the hub starts; the table is validated only when ``true``, so ``false``
    keeps its settings without needing the tokens."""
    bot_token: SecretStr
    """The bot token (``xoxb-…``)."""
    signing_secret: SecretStr | None = None
    """Verifies HTTP requests from Slack; required in ``http`` mode."""
    app_token: SecretStr | None = None
    """App-level token (``xapp-…``); required in ``socket`` mode."""
    mode: Literal["http", "socket"] = "http"
    """``http``: Slack posts events, commands and button taps to ``POST /slack/events`` on the
    hub's server (a public HTTPS URL; needs ``signing_secret``). ``socket``: the hub connects out
    (Socket Mode: no public URL; needs ``app_token``)."""
    api_url: str = "https://slack.com/api/"
    """Web API base URL (tests point it at a local fake)."""
    command: str = "/ask"
    """The slash command the Slack app declares: ``/ask <question>``, or ``/ask <hub command>``
    (``/ask jobs``). Change both when ``/ask`` is taken in your workspace."""
    ack_text: str = "Working on it…"
    """The immediate reply to the slash command once the question is recorded; the answer
    follows as a message of its own."""
    ack_visibility: Literal["ephemeral", "in_channel"] = "ephemeral"
    """Who sees ``ack_text``: ``ephemeral``, only the user who typed the command; ``in_channel``,
    everyone in the channel."""
    rate_limits: Annotated[RateLimits, levels_default_to(RateLimits.slack())] = RateLimits.slack()
    """Outbound buckets (``chat.postMessage``: about one message a second per channel); a table
    sets the levels it names, e.g. ``per_chat = { per_second = 1.0, burst = 3 }``."""

    @model_validator(mode="after")
    def _mode_needs_its_secret(self) -> SlackConfig:
        if self.mode == "http" and not (self.signing_secret and self.signing_secret.get_secret_value()):
            raise ValueError("mode 'http' needs signing_secret (Slack app → Basic Information → Signing Secret)")
        if self.mode == "socket" and not (self.app_token and self.app_token.get_secret_value()):
            raise ValueError("mode 'socket' needs app_token (an xapp- token with connections:write)")
        if not self.command.startswith("/") or " " in self.command:
            raise ValueError("command must look like '/ask'")
        return self

    @field_validator("api_url")
    @classmethod
    def _trailing_slash(cls, value: str) -> str:
        # AsyncWebClient joins base_url + method name by plain concatenation.
        if not value.startswith(("http://", "https://")):
            raise ValueError("api_url must be an http(s) URL such as https://slack.com/api/")
        return value if value.endswith("/") else value + "/"


class SlackChannel:
    """The Slack adapter. ``SlackChannel(name, config, context)``; see the module docstring."""

    config_model: ClassVar[type[SlackConfig]] = SlackConfig
    manifest: ClassVar[Manifest] = Manifest(
        id="slack",
        name="Slack",
        provides=("channel:slack",),
        config=SlackConfig,
        description="Slack: slash commands, app mentions, DMs and Block Kit buttons (slack-bolt)",
        permissions=("network", "http_route"),
        secrets=("bot_token", "signing_secret", "app_token"),
    )
    capabilities: Capabilities = Capabilities(
        max_length=MAX_LENGTH, dialect="slack_mrkdwn", edits=True, buttons=True, typing=False
    )

    @classmethod
    async def probe(cls, name: str, section: dict[str, Any], *, timeout: float) -> Check:
        """A live ``auth.test`` (and, in Socket Mode, the app token) (``hub.extensions.Probing``)."""
        return await probe_app(name, section, cls.config_model, timeout=timeout)

    def __init__(self, name: str, config: SlackConfig, context: ChannelContext) -> None:
        self.name = name
        self._config = config
        self._context = context
        self._access = AccessPolicy(config, channel=name, pairing=context.pairing, ids=SLACK_IDS, match_usernames=False)
        self._client = AsyncWebClient(token=config.bot_token.get_secret_value(), base_url=config.api_url)
        self._ops = SlackOps(self._client)
        self._limiter = RateLimiter(config.rate_limits)
        self._deliverer = self._new_deliverer()
        secret = config.signing_secret.get_secret_value() if config.signing_secret else ""
        self._bot: BotIdentity | None = None
        self._inbox: Inbox | None = None
        self._app = self._build_app(secret)
        self._socket: _SocketMode | None = None
        self._running = False
        self.problem: str | None = None
        """Never set (see ``Channel``): in HTTP mode Slack calls us, in Socket Mode the client
        reconnects on its own."""
        if config.mode == "http":
            ingress = SlackIngress(name, signing_secret=secret, app=self._app, ready=lambda: self._running)
            context.add_route("POST", EVENTS_PATH, ingress.handle)

    @classmethod
    def config_warnings(cls, name: str, section: dict[str, Any]) -> list[str]:
        """``hub.extensions.Advising``: nobody can use the bot; names where member ids are needed."""
        return section_warnings(SlackConfig, name, section, ids=SLACK_IDS)

    def _new_deliverer(self) -> Deliverer:
        return Deliverer(self._ops, self.capabilities, self._limiter)

    # ------------------------------------------------------------------ lifecycle
    async def start(self, inbox: Inbox) -> None:
        if self._running:
            raise RuntimeError(f"channel {self.name!r} is already started")
        try:
            async with slack_errors("auth.test"):
                auth = await self._client.auth_test()
        except ChannelError as exc:
            if exc.status in REFUSED_TOKEN:
                raise ConfigError(
                    f"channels.{self.name}.bot_token: Slack refused the token ({exc.status}); "
                    "use the app's xoxb- Bot User OAuth Token"
                ) from None
            raise
        self._bot = BotIdentity(user_id=str(auth["user_id"]), bot_id=auth.get("bot_id"), team_id=auth.get("team_id"))
        self._inbox = inbox
        if self._config.mode == "socket":
            await self._start_socket()
        self._running = True
        log.info("slack channel %s started (mode %s, bot user %s)", self.name, self._config.mode, self._bot.user_id)

    async def _start_socket(self) -> None:
        from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler

        assert self._config.app_token is not None  # checked by SlackConfig
        app_token = self._config.app_token.get_secret_value()
        # The SDK's connect() retries a refused token forever; ask once ourselves so a bad
        # app_token stops start-up with a clear message instead.
        try:
            async with slack_errors("apps.connections.open"):
                await self._client.apps_connections_open(app_token=app_token)
        except ChannelError as exc:
            if exc.status in REFUSED_TOKEN:
                raise ConfigError(
                    f"channels.{self.name}.app_token: Slack refused it ({exc.status}); use an "
                    "app-level xapp- token with the connections:write scope"
                ) from None
            raise
        socket: _SocketMode = AsyncSocketModeHandler(self._app, app_token=app_token, web_client=self._client)
        self._socket = socket
        try:
            async with asyncio.timeout(SOCKET_CONNECT_TIMEOUT):
                await socket.connect_async()
        except BaseException as exc:  # timed out, or cancelled (the hub stops during a start retry)
            await socket.close_async()
            self._socket = None
            if isinstance(exc, TimeoutError):
                raise ChannelError("slack socket mode: could not connect", retryable=True) from None
            raise

    async def stop(self) -> None:
        if not self._running:
            return
        self._running = False
        self._inbox = None
        try:
            if self._socket is not None:
                await self._socket.close_async()
        finally:
            self._socket = None
            await self._deliverer.aclose()
            # A stopped channel may be started again: give it a fresh Deliverer.
            self._deliverer = self._new_deliverer()
        log.info("slack channel %s stopped", self.name)

    # ------------------------------------------------------------------ outbound
    async def send(self, msg: Outbound) -> Delivery:
        if msg.ephemeral_to and not msg.typing:
            return await self._send_ephemeral(msg, msg.ephemeral_to)
        return await self._deliverer.send(msg)

    async def _send_ephemeral(self, msg: Outbound, user: str) -> Delivery:
        rich = msg.format == "markdown"
        text = render(msg.text, "slack_mrkdwn") if rich else msg.text
        ts = await self._ops.post_ephemeral(msg.conversation, user, text, rich=rich, buttons=msg.buttons)
        return Delivery(platform_ids=(ts,))

    # ------------------------------------------------------------------ Bolt wiring
    def _build_app(self, signing_secret: str) -> AsyncApp:
        # Bolt passes authorize's arguments by parameter name, so a bound method (with `self`)
        # does not fit; a closure does.
        async def authorize(enterprise_id: str | None, team_id: str | None) -> AuthorizeResult:
            return self._authorize_result(enterprise_id, team_id)

        app = AsyncApp(
            name=f"autohands-{self.name}",
            logger=logging.getLogger(f"{__name__}.bolt"),
            # The HTTP answer waits for our listener, i.e. for the commit (bolt-python #1061).
            process_before_response=True,
            signing_secret=signing_secret,
            # SlackIngress verified the raw bytes; Bolt gets them parsed and re-encoded, which
            # carry no signature (Socket Mode has none at all).
            request_verification_enabled=False,
            # A tokenless client plus `authorize` keeps Bolt from calling auth.test itself:
            # start() already did, against `api_url`.
            client=AsyncWebClient(base_url=self._config.api_url),
            authorize=authorize,
        )
        app.command(self._config.command)(self._on_command)
        app.event("app_mention")(self._on_event)
        app.event("message")(self._on_event)
        app.action(re.compile(".*"))(self._on_action)
        # Any other subscribed event is acked, not answered 404: Slack disables subscriptions
        # that fail 5% of deliveries in an hour (docs/PLATFORMS.md S4).
        app.event(re.compile(".*"))(self._on_other_event)
        return app

    def _authorize_result(self, enterprise_id: str | None, team_id: str | None) -> AuthorizeResult:
        bot = self._bot or BotIdentity(user_id="")
        return AuthorizeResult(
            enterprise_id=enterprise_id,
            team_id=team_id or bot.team_id,
            bot_user_id=bot.user_id or None,
            bot_id=bot.bot_id,
            bot_token=self._config.bot_token.get_secret_value(),
        )

    @property
    def _commands(self) -> set[str]:
        return {c.name for c in self._context.commands}

    async def _on_command(self, ack: Any, body: dict[str, Any]) -> None:
        if not str(body.get("text") or "").strip() and "help" not in self._commands:
            names = "|".join(sorted(self._commands))
            usage = f"Usage: `{self._config.command} <question>`" + (
                f" or `{self._config.command} <{names}>`" if names else ""
            )
            await ack(text=usage, response_type="ephemeral")
            return
        if not str(body.get("text") or "").strip():
            body = {**body, "text": "help"}
        inbound = self._with_admin(command_inbound(self.name, body, commands=self._commands))
        chat = inbound.conversation.chat
        if not await self._access.allows(inbound.sender, chat, inbound.direct):
            # Only the user sees an ephemeral answer to their own command, so a pairing code is
            # private even in a channel: answered as in a direct chat, and always with why.
            text = await self._access.answer_stranger(inbound.sender, chat)
            await ack(text=text, response_type="ephemeral")
            return
        if not self._access.addressed(inbound.direct, True, False, True, chat):
            await ack(text="The assistant is turned off in this channel.", response_type="ephemeral")
            return
        await self._commit(inbound)
        await ack(text=self._config.ack_text, response_type=self._config.ack_visibility)

    async def _on_event(self, body: dict[str, Any], event: dict[str, Any]) -> None:
        assert self._bot is not None
        parsed = event_inbound(
            self.name, event, event_id=str(body.get("event_id") or ""), bot=self._bot, commands=self._commands
        )
        if parsed is None:
            return  # Bolt acks it; nobody's words to answer
        inbound = self._with_admin(parsed)
        chat = inbound.conversation.chat
        is_command = inbound.kind == "command"
        if not self._access.addressed(inbound.direct, inbound.mentioned, False, is_command, chat):
            return
        verdict = await self._access.check(inbound.sender, chat, inbound.direct)
        if verdict.reply is not None:
            await self._refuse(inbound, verdict.reply)
        if verdict.allowed:
            await self._commit(inbound)

    async def _on_other_event(self, event: dict[str, Any]) -> None:
        log.debug("slack %s: ignored event type %s", self.name, event.get("type"))

    async def _on_action(self, ack: Any, body: dict[str, Any]) -> None:
        parsed = action_inbound(self.name, body)
        if parsed is not None:
            inbound = self._with_admin(parsed)
            # The hub checks that the clicking user is the run's user; we pass the click on.
            if await self._access.allows(inbound.sender, inbound.conversation.chat, inbound.direct):
                await self._commit(inbound)
        await ack()

    def _with_admin(self, inbound: Inbound) -> Inbound:
        return dataclasses.replace(inbound, sender=self._access.with_admin(inbound.sender))

    async def _commit(self, inbound: Inbound) -> None:
        """Record through the inbox; Bolt answers Slack only after this returns."""
        inbox = self._inbox
        if inbox is None:
            raise RuntimeError("slack channel received a request before start()")
        if not await inbox(inbound):
            log.debug("slack %s: redelivery of %s acked again", self.name, inbound.platform_id)

    async def _refuse(self, inbound: Inbound, text: str) -> None:
        try:
            await self._ops.post(inbound.conversation, text, rich=False)
        except ChannelError as exc:
            log.warning("slack %s: could not send a refusal: %s", self.name, exc)


__all__ = ["EVENTS_PATH", "SlackChannel", "SlackConfig"]
