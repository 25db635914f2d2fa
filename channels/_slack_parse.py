"""Slack payloads → the hub's ``Inbound``s: pure functions, no I/O, no Bolt objects.

Kept apart from ``channels/slack.py`` so the rules (what is ignored, what a conversation is,
how a subcommand is recognised) read and test on their own.

A slash command's conversation is its channel *and its user*: ``thread = "user:<id>"``. Two
people asking ``/ask`` in one channel must not share a history (the model would see one
person's questions while answering the other). That ``thread`` is not a Slack thread, so
``thread_ts`` leaves it out (answers still go to the channel itself), and the buttons of such
an answer carry it in their block's ``block_id`` so a click comes back to the same conversation
(``channels._slack_api``).
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from typing import Any

from hub.messages import ConversationRef, Inbound, InboundKind, Sender

__all__ = [
    "BotIdentity",
    "action_inbound",
    "command_inbound",
    "event_inbound",
    "is_ignored_message",
    "is_user_thread",
    "name_like_entries",
    "split_command",
    "strip_mention",
    "user_thread",
]

USER_THREAD_PREFIX = "user:"
"""Marks a ``ConversationRef.thread`` that names the user of a slash command, not a Slack thread."""

# Subtypes that are still a person writing: everything else (message_changed, message_deleted,
# bot_message, channel_join, …) is a notification about a message, not a new one.
_USER_SUBTYPES = frozenset({"file_share", "thread_broadcast"})


@dataclass(frozen=True, slots=True, kw_only=True)
class BotIdentity:
    """Who the bot is on Slack, learned from ``auth.test`` at start."""

    user_id: str
    bot_id: str | None = None
    team_id: str | None = None


def strip_mention(text: str, bot_user_id: str) -> str:
    """Remove ``<@UBOT>`` / ``<@UBOT|name>`` so the agent sees only what was asked."""
    pattern = rf"<@{re.escape(bot_user_id)}(?:\|[^>]*)?>"
    return re.sub(r"\s{2,}", " ", re.sub(pattern, "", text)).strip()


def split_command(text: str, commands: Collection[str]) -> tuple[str, str] | None:
    """``"remind in 10m x"`` → ``("remind", "in 10m x")`` when the first word names a hub command.

    A leading ``/`` is accepted too (``/ask /new``), and names compare case-insensitively.
    """
    head, _, rest = text.strip().partition(" ")
    name = head.removeprefix("/").lower()
    if name and name in commands:
        return name, rest.strip()
    return None


def is_ignored_message(event: dict[str, Any], bot: BotIdentity) -> bool:
    """True for messages the hub must not answer: its own, other bots', edits and notices."""
    subtype = event.get("subtype")
    if subtype and subtype not in _USER_SUBTYPES:
        return True
    if event.get("bot_id") or event.get("bot_profile"):
        return True  # other bots too: two bots answering each other never stop
    user = event.get("user")
    return not user or user == bot.user_id


def user_thread(user_id: str) -> str | None:
    """The ``thread`` that keys a slash command's conversation by its user (``None`` without one)."""
    return f"{USER_THREAD_PREFIX}{user_id}" if user_id else None


def is_user_thread(thread: str | None) -> bool:
    """Whether ``thread`` is a ``user_thread`` rather than a Slack thread's ``ts``."""
    return bool(thread) and str(thread).startswith(USER_THREAD_PREFIX)


_MEMBER_ID = re.compile(r"[UW][A-Z0-9]+")


def name_like_entries(entries: Iterable[str]) -> list[str]:
    """Allow-list entries that are not Slack member ids (``U…`` / ``W…``), e.g. ``alice``."""
    return [e for e in entries if not _MEMBER_ID.fullmatch(e.strip().lstrip("@"))]


def _sender(user_id: str, name: str) -> Sender:
    # is_admin is filled in by the adapter's AccessPolicy, which on Slack matches ids only.
    return Sender(id=user_id, name=name, username=name or None)


def _kind_and_text(text: str, commands: Collection[str]) -> tuple[InboundKind, str | None, str]:
    found = split_command(text, commands) if text.startswith("/") else None
    if found:
        return "command", found[0], found[1]
    return "message", None, text


def event_inbound(
    channel_name: str,
    event: dict[str, Any],
    *,
    event_id: str,
    bot: BotIdentity,
    commands: Collection[str],
) -> Inbound | None:
    """An ``app_mention`` or ``message`` event → ``Inbound``; ``None`` when it is nobody's words.

    Whether a channel message is addressed to the bot is the access policy's call (the adapter
    asks it); this function only marks ``mentioned`` / ``direct``.
    """
    etype = event.get("type")
    if is_ignored_message(event, bot):
        return None
    ts = str(event.get("ts") or "")
    chat = str(event.get("channel") or "")
    if not chat:
        return None
    thread: str | None
    if etype == "app_mention":
        # A mention is answered in its thread, and that thread is its own conversation.
        thread = str(event.get("thread_ts") or ts)
        text = strip_mention(str(event.get("text") or ""), bot.user_id)
        mentioned, direct = True, False
    elif etype == "message" and event.get("channel_type") == "im":
        # In a DM only a threaded reply starts a separate conversation.
        thread = str(event["thread_ts"]) if event.get("thread_ts") else None
        text = str(event.get("text") or "").strip()
        mentioned, direct = False, True
    elif etype == "message":
        text = str(event.get("text") or "")
        if f"<@{bot.user_id}" in text:
            return None  # the app_mention copy of this message is the one we answer
        # Answered, when group policy wants it, in the message's thread like a mention.
        thread = str(event.get("thread_ts") or ts)
        text = text.strip()
        mentioned, direct = False, False
    else:
        return None
    kind, command, body = _kind_and_text(text, commands)
    return Inbound(
        kind=kind,
        conversation=ConversationRef(channel=channel_name, chat=chat, thread=thread),
        sender=_sender(str(event["user"]), ""),
        text=body,
        command=command,
        platform_id=event_id,
        mentioned=mentioned,
        direct=direct,
        reply_to_platform_id=ts or None,
    )


def command_inbound(
    channel_name: str,
    body: dict[str, Any],
    *,
    commands: Collection[str],
) -> Inbound:
    """A slash command → ``Inbound``: ``/ask status`` is the hub command ``status``, else a message.

    Its conversation is the channel and the user (see the module docstring). The sender is the
    ``user_id``; the deprecated ``user_name`` is only a display name.
    """
    text = str(body.get("text") or "").strip()
    found = split_command(text, commands)
    chat = str(body.get("channel_id") or "")
    user_id = str(body.get("user_id") or "")
    kind: InboundKind = "command" if found else "message"
    command, rest = found if found else (None, text)
    return Inbound(
        kind=kind,
        conversation=ConversationRef(channel=channel_name, chat=chat, thread=user_thread(user_id)),
        sender=_sender(user_id, str(body.get("user_name") or "")),
        text=rest,
        command=command,
        platform_id=f"cmd:{body.get('trigger_id') or ''}",
        mentioned=True,  # a slash command is addressed to the app by definition
        direct=chat.startswith("D"),
    )


def _obj(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def action_inbound(channel_name: str, body: dict[str, Any]) -> Inbound | None:
    """The first action of a ``block_actions`` payload → a ``button`` inbound from the clicking user.

    Its conversation is the clicked message's Slack thread, else the ``user:`` conversation its
    ``block_id`` names (an answer to a slash command), else the channel.
    """
    actions = body.get("actions")
    if not isinstance(actions, list) or not actions:
        return None
    action = _obj(actions[0])
    button = str(action.get("action_id") or action.get("value") or "")
    user, container, message = _obj(body.get("user")), _obj(body.get("container")), _obj(body.get("message"))
    chat = str(container.get("channel_id") or _obj(body.get("channel")).get("id") or "")
    if not button or not chat or not user.get("id"):
        return None
    block_id = str(action.get("block_id") or "")
    thread = container.get("thread_ts") or message.get("thread_ts") or (block_id if is_user_thread(block_id) else None)
    key = body.get("trigger_id") or action.get("action_ts") or ""
    return Inbound(
        kind="button",
        conversation=ConversationRef(channel=channel_name, chat=chat, thread=str(thread) if thread else None),
        sender=_sender(str(user["id"]), str(user.get("username") or user.get("name") or "")),
        text=str(action.get("value") or ""),
        button=button,
        platform_id=f"act:{key}",
        mentioned=True,
        direct=chat.startswith("D"),
        reply_to_platform_id=str(container.get("message_ts") or message.get("ts") or "") or None,
    )
