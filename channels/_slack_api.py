"""The Slack Web API calls the hub makes through slack_sdk, and their errors.

* ``SlackOps``: the ``PlatformOps`` primitives (post, edit, typing) on an ``AsyncWebClient``,
  which the shared ``Deliverer`` composes, plus ``post_ephemeral``.
* ``slack_errors``: slack_sdk and network exceptions → ``ChannelError``, in one place.
* ``probe_app``: ``autohands doctor``'s live ``auth.test`` (``SlackChannel.probe``).
* Block Kit: ``button_blocks``, and where a conversation's answer goes (``slack_thread_ts``,
  ``buttons_block_id``; why a slash command's conversation is no Slack thread is told in
  ``channels._slack_parse``).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Collection, Sequence
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import aiohttp
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.web.async_client import AsyncWebClient

from channels._probe import failed, validated
from channels._slack_parse import is_user_thread
from channels.delivery import FormattingRejected
from channels.ratelimit import RetryAfter
from channels.splitting import split_text
from hub.agent import Check
from hub.errors import ChannelError
from hub.messages import Button, ConversationRef

if TYPE_CHECKING:
    from channels.slack import SlackConfig

__all__ = [
    "MAX_BLOCKS",
    "REFUSED_TOKEN",
    "SECTION_LIMIT",
    "SlackOps",
    "button_blocks",
    "buttons_block_id",
    "probe_app",
    "slack_errors",
    "slack_thread_ts",
]

SECTION_LIMIT = 3000
"""Block Kit section text is limited to 3,000 characters (docs/PLATFORMS.md S7)."""
MAX_BLOCKS = 50

REFUSED_TOKEN = frozenset({"invalid_auth", "not_authed", "account_inactive", "token_revoked", "not_allowed_token_type"})
"""Error codes that mean the token itself is refused: no retry will help."""
_FORMATTING_ERRORS = frozenset(
    {"invalid_blocks", "invalid_blocks_format", "msg_too_long", "msg_blocks_too_long", "invalid_attachments"}
)
_RETRYABLE_ERRORS = frozenset(
    {"ratelimited", "internal_error", "fatal_error", "service_unavailable", "request_timeout"}
)


@asynccontextmanager
async def slack_errors(what: str) -> AsyncIterator[None]:
    """Translate slack_sdk / network failures into ``ChannelError`` (one place, one policy)."""
    try:
        yield
    except SlackApiError as exc:
        raise _api_error(what, exc) from None
    except (aiohttp.ClientError, TimeoutError, SlackClientError) as exc:
        raise ChannelError(f"slack {what}: network error ({type(exc).__name__})", retryable=True) from None


def _api_error(what: str, exc: SlackApiError) -> ChannelError:
    response = exc.response
    status = int(getattr(response, "status_code", 0) or 0)
    code = str(response.get("error") or "") if isinstance(response.data, dict) else ""
    if status == 429 or code == "ratelimited":
        headers = response.headers or {}
        raw = headers.get("Retry-After") or headers.get("retry-after")
        try:
            retry_after = float(raw) if raw is not None else 1.0
        except (TypeError, ValueError):
            retry_after = 1.0
        return RetryAfter(f"slack {what}: rate limited", retry_after=retry_after)
    if code in _FORMATTING_ERRORS:
        return FormattingRejected(f"slack {what}: {code}", status=code)
    retryable = status >= 500 or code in _RETRYABLE_ERRORS
    return ChannelError(f"slack {what}: {code or status}", retryable=retryable, status=code or status)


class SlackOps:
    """``PlatformOps`` on ``AsyncWebClient``: the three primitives the Deliverer composes."""

    def __init__(self, client: AsyncWebClient) -> None:
        self._client = client

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
        # Slack has no idempotency key and no reply-to outside threads: `nonce` and `reply_to`
        # are unused; the conversation's thread places the answer.
        kwargs: dict[str, Any] = {
            "channel": conv.chat,
            "text": text,
            "mrkdwn": rich,
            "unfurl_links": False,
            "unfurl_media": False,
        }
        if thread_ts := slack_thread_ts(conv):
            kwargs["thread_ts"] = thread_ts
        if buttons:
            kwargs["blocks"] = button_blocks(text, buttons, rich=rich, block_id=buttons_block_id(conv))
        async with slack_errors("chat.postMessage"):
            resp = await self._client.chat_postMessage(**kwargs)
        return str(resp["ts"])

    async def edit(
        self,
        conv: ConversationRef,
        message_id: str,
        text: str,
        *,
        rich: bool,
        buttons: Sequence[Button] = (),
    ) -> None:
        # `blocks=[]` clears buttons of an earlier version (an answered approval).
        blocks = button_blocks(text, buttons, rich=rich, block_id=buttons_block_id(conv)) if buttons else []
        async with slack_errors("chat.update"):
            await self._client.chat_update(channel=conv.chat, ts=message_id, text=text, blocks=blocks)

    async def typing(self, conv: ConversationRef) -> None:
        """Slack bots have no typing indicator (it exists only for RTM): nothing to do."""

    async def post_ephemeral(
        self, conv: ConversationRef, user: str, text: str, *, rich: bool, buttons: Sequence[Button] = ()
    ) -> str:
        """Post ``text`` that only ``user`` sees; return its ``message_ts``. Not a ``PlatformOps``
        primitive: the adapter sends these itself, in one piece, outside the ``Deliverer``."""
        kwargs: dict[str, Any] = {"channel": conv.chat, "user": user, "text": text}
        if thread_ts := slack_thread_ts(conv):
            kwargs["thread_ts"] = thread_ts
        if buttons:
            kwargs["blocks"] = button_blocks(text, buttons, rich=rich, block_id=buttons_block_id(conv))
        async with slack_errors("chat.postEphemeral"):
            resp = await self._client.chat_postEphemeral(**kwargs)
        return str(resp.get("message_ts") or "")


def slack_thread_ts(conv: ConversationRef) -> str | None:
    """The ``thread_ts`` to post into: the conversation's Slack thread, if it is one."""
    return None if is_user_thread(conv.thread) else conv.thread


def buttons_block_id(conv: ConversationRef) -> str | None:
    """The actions ``block_id`` that brings a click back to ``conv`` when no Slack thread can."""
    return conv.thread if is_user_thread(conv.thread) else None


def button_blocks(
    text: str, buttons: Collection[Button], *, rich: bool, block_id: str | None = None
) -> list[dict[str, Any]]:
    """Section blocks for the text (≤ 3,000 chars each) and one actions block of buttons.

    Each element's ``action_id`` is the hub's button id, so a click comes back as that id;
    ``block_id`` (see ``buttons_block_id``) comes back with it.
    """
    kind = "mrkdwn" if rich else "plain_text"
    sections = [
        {"type": "section", "text": {"type": kind, "text": part}}
        for part in split_text(text, SECTION_LIMIT, number=False)
        if part.strip()
    ]
    elements: list[dict[str, Any]] = []
    for b in list(buttons)[:25]:
        element: dict[str, Any] = {
            "type": "button",
            "action_id": b.id,
            "value": b.id,
            "text": {"type": "plain_text", "text": b.label[:75] or b.id[:75]},
        }
        if b.style in ("primary", "danger"):
            element["style"] = b.style
        elements.append(element)
    actions: dict[str, Any] = {"type": "actions", "elements": elements}
    if block_id:
        actions["block_id"] = block_id[:255]  # Block Kit's limit
    return [*sections[: MAX_BLOCKS - 1], actions]


async def probe_app(name: str, section: dict[str, Any], model: type[SlackConfig], *, timeout: float) -> Check:
    """``auth.test`` with the bot token and, in Socket Mode, ``apps.connections.open`` with the
    app token: the bot user and team, or why it failed (``Probing``)."""
    config = validated(model, name, section)
    if isinstance(config, Check):
        return config
    token = config.bot_token.get_secret_value()
    client = AsyncWebClient(token=token, base_url=config.api_url, timeout=max(1, int(timeout)))
    key = "bot_token"
    try:
        async with asyncio.timeout(timeout):
            async with slack_errors("auth.test"):
                auth = await client.auth_test()
            if config.mode == "socket" and config.app_token is not None:
                key = "app_token"
                async with slack_errors("apps.connections.open"):
                    await client.apps_connections_open(app_token=config.app_token.get_secret_value())
    except TimeoutError as exc:
        return failed(name, ChannelError(str(exc)), url=config.api_url, key=key, refused=False)
    except ChannelError as exc:
        return failed(name, exc, url=config.api_url, key=key, refused=exc.status in REFUSED_TOKEN)
    socket = "; app token accepted (Socket Mode)" if config.mode == "socket" else ""
    identity = f"bot user {auth.get('user')} ({auth.get('user_id')}) in {auth.get('team')}{socket}"
    return Check(f"channel {name}", "ok", identity)
