"""The Discord REST calls the hub makes through discord.py, and their errors.

* ``DiscordOps``: the ``PlatformOps`` primitives (post, edit, typing) on a discord.py client,
  which the shared ``Deliverer`` composes.
* ``map_errors``: discord.py exceptions → ``ChannelError``, in one place.
* ``target_channel_id``: where a conversation's replies go (a thread is a channel).
* ``probe_identity``: ``autohands doctor``'s live ``users/@me`` (``DiscordChannel.probe``).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

import aiohttp
import discord

from channels._probe import failed, validated
from channels.ratelimit import RetryAfter
from hub.agent import Check
from hub.errors import ChannelError
from hub.messages import Button, ConversationRef

if TYPE_CHECKING:
    from channels.discord import DiscordConfig

__all__ = ["DiscordOps", "map_errors", "probe_identity", "target_channel_id"]

_NO_PINGS = discord.AllowedMentions(everyone=False, users=False, roles=False, replied_user=True)
_STYLES = {
    "primary": discord.ButtonStyle.primary,
    "danger": discord.ButtonStyle.danger,
    "default": discord.ButtonStyle.secondary,
}


def target_channel_id(conv: ConversationRef) -> int:
    """The Discord channel a reply goes to: the thread if the conversation has one."""
    raw = conv.thread or conv.chat
    if not raw.isdigit():
        raise ValueError(f"not a Discord channel id: {raw!r}")
    return int(raw)


@contextlib.contextmanager
def map_errors(what: str) -> Iterator[None]:
    """discord.py exceptions → ``ChannelError`` (429 → retry_after, 5xx transient, 4xx permanent)."""
    try:
        yield
    except discord.RateLimited as exc:  # discord.py retries short 429s itself; long ones land here
        raise RetryAfter(f"discord {what}: rate limited", retry_after=exc.retry_after) from exc
    except discord.HTTPException as exc:
        status = exc.status
        if status == 429:
            header = exc.response.headers.get("Retry-After") if exc.response is not None else None
            retry = float(header) if header and header.replace(".", "", 1).isdigit() else 1.0
            raise RetryAfter(f"discord {what}: rate limited", retry_after=retry) from exc
        retryable = status >= 500 or status == 408
        raise ChannelError(f"discord {what}: {status} {exc.text or exc}", retryable=retryable, status=status) from exc
    except (TimeoutError, aiohttp.ClientError, OSError) as exc:
        raise ChannelError(f"discord {what}: {type(exc).__name__}: {exc}", retryable=True) from exc


def _view(buttons: Sequence[Button]) -> discord.ui.View | None:
    """Buttons as a ``discord.ui.View`` whose ``custom_id`` is the hub's button id.

    The view is stopped before it is sent: discord.py then only serialises it and does not keep
    it in its in-memory view store; clicks are handled in ``on_interaction`` for every message,
    including those posted before a restart.
    """
    if not buttons:
        return None
    view = discord.ui.View(timeout=None)
    for button in buttons:
        view.add_item(
            discord.ui.Button(
                label=button.label[:80],
                custom_id=button.id[:100],
                style=_STYLES.get(button.style, discord.ButtonStyle.secondary),
            )
        )
    view.stop()
    return view


class DiscordOps:
    """``PlatformOps`` on a discord.py client; the ``Deliverer`` composes them.

    Args:
        client: the connected client; posts go out over its REST session.
        on_posted: called with the id of every message posted (the adapter's liveness check
            waits for its gateway echo).
    """

    def __init__(self, client: discord.Client, on_posted: Callable[[int], None]) -> None:
        self._client = client
        self._on_posted = on_posted

    def _target(self, conv: ConversationRef) -> discord.PartialMessageable:
        try:
            return self._client.get_partial_messageable(target_channel_id(conv))
        except ValueError as exc:
            raise ChannelError(f"discord: {exc}", retryable=False) from None

    async def post(
        self,
        conv: ConversationRef,
        text: str,
        *,
        rich: bool,
        reply_to: str | None = None,
        buttons: tuple[Button, ...] = (),
        nonce: str | None = None,
    ) -> str:
        channel = self._target(conv)
        reference = None
        if reply_to and reply_to.isdigit():
            reference = discord.MessageReference(
                message_id=int(reply_to), channel_id=channel.id, fail_if_not_exists=False
            )
        kwargs: dict[str, Any] = {"allowed_mentions": _NO_PINGS}
        if reference is not None:
            kwargs["reference"] = reference
        if nonce:
            kwargs["nonce"] = nonce[:25]  # discord.py sends enforce_nonce with every nonce
        view = _view(buttons)
        if view is not None:
            kwargs["view"] = view
        with map_errors("create message"):
            message = await channel.send(text, **kwargs)
        self._on_posted(message.id)
        return str(message.id)

    async def edit(
        self,
        conv: ConversationRef,
        message_id: str,
        text: str,
        *,
        rich: bool,
        buttons: tuple[Button, ...] = (),
    ) -> None:
        partial = self._target(conv).get_partial_message(int(message_id))
        with map_errors("edit message"):
            await partial.edit(content=text, view=_view(buttons), allowed_mentions=_NO_PINGS)

    async def typing(self, conv: ConversationRef) -> None:
        with map_errors("typing"):
            await self._target(conv).typing()


async def probe_identity(name: str, section: dict[str, Any], model: type[DiscordConfig], *, timeout: float) -> Check:
    """``GET users/@me`` with the section's token: the bot's name, or why it failed (``Probing``)."""
    from channels.discord import point_sdk_at  # the one place discord.py's base URL is set

    config = validated(model, name, section)
    if isinstance(config, Check):
        return config
    point_sdk_at(config.api_base, config.gateway_url)
    http = discord.http.HTTPClient(asyncio.get_running_loop())
    try:
        async with asyncio.timeout(timeout):
            with map_errors("users/@me"):
                try:
                    user = await http.static_login(config.token.get_secret_value())
                except discord.LoginFailure as exc:  # its 401, as discord.py reports it
                    raise ChannelError("discord users/@me: 401", retryable=False, status=401) from exc
                finally:
                    await http.close()
    except TimeoutError as exc:
        return failed(name, ChannelError(str(exc)), url=config.api_base, key="token", refused=False)
    except ChannelError as exc:
        return failed(name, exc, url=config.api_base, key="token", refused=exc.status in (401, 403))
    return Check(f"channel {name}", "ok", f"bot {user.get('username')} (id {user.get('id')})")
