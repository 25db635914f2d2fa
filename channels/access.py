"""Who may talk to the bot, and when a group message is meant for it.

"Access control before intelligence" (docs/PLATFORMS.md G4): a channel asks ``AccessPolicy.check``
before anything reaches the store or the agent.

Decision on the default: **nobody is let in without the operator's say.** A freshly configured
bot token is public (anyone can find a Telegram bot by name), and an agent with tools must not
be usable by strangers because the operator forgot a line of config. A stranger who writes in a
direct chat gets a pairing code (``dm_policy = "pairing"``, ``hub.pairing``): the operator
approves it with ``autohands pairing approve CODE`` and the user is in, no restart needed. In a
group a stranger is ignored (a code posted there would be everyone's). Each ignored or refused
sender gets one log line naming the setting that would let them in. Set ``allow_all = true``
to open a bot deliberately.
"""

from __future__ import annotations

import dataclasses
import logging
import re
import time
from collections.abc import Callable, Hashable
from typing import Any, Literal

from pydantic import BaseModel, Field, ValidationError, field_validator

from hub.channel import Pairing
from hub.config import StrictBool
from hub.messages import Sender

__all__ = [
    "NUMERIC_IDS",
    "AccessConfig",
    "AccessPolicy",
    "DmPolicy",
    "GroupPolicy",
    "IdRule",
    "Verdict",
    "access_warnings",
    "is_numeric_id",
    "section_warnings",
]

logger = logging.getLogger(__name__)

GroupPolicy = Literal["mention", "all", "commands", "off"]
"""When a group message is for the bot: ``mention`` (mentioned, replied to, or a command),
``all`` (every message), ``commands`` (commands only), ``off`` (never)."""

DmPolicy = Literal["pairing", "allowlist", "open"]
"""What a stranger who writes in a direct chat gets (see ``AccessConfig.dm_policy``)."""

DEFAULT_REFUSAL = (
    "Sorry, I'm a private assistant and I can't talk with you. If you think you should have "
    "access, ask the person who runs me to add your id ({user_id}) to the allowed users."
)

PAIRING_TEXT = (
    "Hi! I'm a private assistant. To talk with me, ask the person who runs this bot to approve "
    "code {code} (autohands pairing approve {code}). Your id is {user_id}."
)
PAIRING_FULL_TEXT = (
    "Hi! I'm a private assistant, and too many people are waiting for the approval of the person "
    "who runs me right now. Please try again later."
)

REFUSAL_INTERVAL = 600.0
"""At most one answer (refusal or pairing code) per user in this many seconds, and one log line
per ignored sender; later messages are ignored silently."""

_MAX_REMEMBERED = 4096


def _ids(value: Any) -> list[str]:
    """Accept a list (of str or int: Telegram ids are numbers in TOML) or a comma-separated string."""
    if value is None:
        return []
    if isinstance(value, str | int):
        value = str(value).split(",")
    if not isinstance(value, list | tuple | set):
        raise ValueError("expected a list of user or chat ids / usernames")
    return [str(v).strip() for v in value if str(v).strip()]


def _norm(identity: str) -> str:
    return identity.strip().lstrip("@").casefold()


class AccessConfig(BaseModel):
    """Access settings shared by every channel; adapters subclass it for their config model.

    ``allow_users`` and ``admins`` hold ids or usernames (``@`` optional, case-insensitive; ids
    only where the channel says so, as Slack does);
    ``allow_chats`` holds chat / channel ids in which everyone may talk to the bot.
    """

    allow_users: list[str] = Field(default_factory=list)
    """Users let in without pairing: ids, or usernames where the channel matches them."""
    allow_chats: list[str] = Field(default_factory=list)
    """Chat / channel ids in which everyone may talk to the bot."""
    admins: list[str] = Field(default_factory=list)
    """Admins are always allowed, may use admin commands (``/pair approve CODE``) and cancel
    others' jobs."""
    dm_policy: DmPolicy = "pairing"
    """What a stranger (a user no allow list lets in) gets in a direct chat.
    ``pairing`` (default): a short code to give the person who runs the bot, who approves it
    with ``autohands pairing approve CODE`` (or ``/pair approve CODE`` as an admin); the user is
    then let in without a restart (``autohands users list | revoke``). ``allowlist``: the
    ``refusal_text``, which shows their id to copy into ``allow_users``. ``open``: anyone may talk
    to the bot in a direct chat. Groups follow the allow lists whatever this says."""
    group_policy: GroupPolicy = "mention"
    """When a group message is for the bot: ``mention`` (it is mentioned, replied to, or given a
    command), ``all`` (every message), ``commands`` (commands only), ``off`` (never)."""
    chat_policies: dict[str, GroupPolicy] = Field(default_factory=dict)
    """Per-chat overrides of ``group_policy``, keyed by chat id."""
    refusal_text: str = DEFAULT_REFUSAL
    """Sent once (per user per 10 min) to a stranger in a direct chat when ``dm_policy`` is
    ``allowlist``; ``{user_id}`` and ``{username}`` are filled in."""
    allow_all: StrictBool = False
    """Let anyone talk to the bot, in groups too. Off by default."""

    @field_validator("allow_users", "allow_chats", "admins", mode="before")
    @classmethod
    def _coerce_ids(cls, value: Any) -> list[str]:
        return _ids(value)

    @field_validator("chat_policies", mode="before")
    @classmethod
    def _coerce_keys(cls, value: Any) -> Any:
        return {str(k): v for k, v in value.items()} if isinstance(value, dict) else value


@dataclasses.dataclass(frozen=True, slots=True)
class Verdict:
    """What to do with a sender's message: pass it on (``allowed``), and/or answer ``reply``
    directly (a refusal or a pairing code), never through the hub."""

    allowed: bool
    reply: str | None = None


_ALLOW = Verdict(True)
_IGNORE = Verdict(False)


class _Throttle:
    """Once per key per ``REFUSAL_INTERVAL``, remembering a bounded number of keys."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._last: dict[Hashable, float] = {}

    def take(self, key: Hashable) -> bool:
        """True (and remembered) unless ``key`` had its turn within the interval."""
        now = self._clock()
        last = self._last.get(key)
        if last is not None and now - last < REFUSAL_INTERVAL:
            return False
        if len(self._last) >= _MAX_REMEMBERED:
            self._last = {k: t for k, t in self._last.items() if now - t < REFUSAL_INTERVAL}
            while len(self._last) >= _MAX_REMEMBERED:  # all recent: drop the oldest
                self._last.pop(next(iter(self._last)))
        self._last.pop(key, None)
        self._last[key] = now
        return True

    def give_back(self, key: Hashable) -> None:
        self._last.pop(key, None)


class AccessPolicy:
    """Applies an ``AccessConfig``.

    Args:
        config: the channel's config (any ``AccessConfig`` subclass).
        channel: the channel's name, for log lines and the config keys they name.
        ids: how the platform's user ids look, to warn at start-up about names in ``allow_users``
            / ``admins`` (``access_warnings``); None: no such warning.
        pairing: the hub's pairing service (``ChannelContext.pairing``): users it approved are
            let in, and strangers get codes from it. ``None``: no pairing, strangers in direct
            chats are refused as with ``dm_policy = "allowlist"``.
        clock: monotonic seconds, for the throttles (injectable for tests).
        match_usernames: also match ``allow_users`` / ``admins`` against ``Sender.username``.
            Slack turns it off: its usernames are deprecated and not unique across workspaces
            (Slack Connect), so a name there proves nothing about who is asking.
    """

    def __init__(
        self,
        config: AccessConfig,
        *,
        channel: str = "",
        pairing: Pairing | None = None,
        ids: IdRule | None = None,
        clock: Callable[[], float] = time.monotonic,
        match_usernames: bool = True,
    ) -> None:
        self.config = config
        self._ids = ids
        self._channel = channel or "access"
        self._pairing = pairing
        self._match_usernames = match_usernames
        self._users = frozenset(_norm(u) for u in config.allow_users)
        self._chats = frozenset(c.strip() for c in config.allow_chats)
        self._admins = frozenset(_norm(a) for a in config.admins)
        self._replies = _Throttle(clock)
        self._logs = _Throttle(clock)
        self._log_start()

    @property
    def _pairs(self) -> bool:
        """Strangers in direct chats get pairing codes."""
        return self.config.dm_policy == "pairing" and self._pairing is not None

    def _log_start(self) -> None:
        c = self.config
        if not (c.allow_all or self._users or self._chats or self._admins) and self._pairs:
            logger.warning(
                "[channels.%s]: no allow_users, allow_chats or admins: strangers who write to the bot in "
                "a direct chat get a pairing code; approve one with 'autohands pairing approve CODE'",
                self._channel,
            )
        for line in access_warnings(self._channel, c, ids=self._ids, pairing=self._pairing is not None):
            logger.warning("%s", line)

    def _matches(self, sender: Sender, names: frozenset[str]) -> bool:
        if _norm(sender.id) in names:
            return True
        return self._match_usernames and bool(sender.username) and _norm(sender.username or "") in names

    def is_admin(self, sender: Sender) -> bool:
        return self._matches(sender, self._admins)

    def is_allowed(self, sender: Sender, chat_id: str) -> bool:
        """Whether config lets the sender in (no store read: see ``allows``)."""
        return (
            self.config.allow_all
            or str(chat_id).strip() in self._chats
            or self._matches(sender, self._users)
            or self.is_admin(sender)
        )

    async def allows(self, sender: Sender, chat_id: str, direct: bool = False) -> bool:
        """Whether the sender may talk to the bot here: config, ``dm_policy = "open"``, or an
        approved pairing (read from the store only for senders config does not let in)."""
        if self.is_allowed(sender, chat_id) or (direct and self.config.dm_policy == "open"):
            return True
        if self._pairing is None or sender.is_bot:
            return False
        return await self._pairing.is_approved(self._channel, sender.id)

    async def check(self, sender: Sender, chat_id: str, direct: bool) -> Verdict:
        """Let the sender in, or answer a stranger, or ignore them.

        A stranger in a direct chat gets a pairing code (or the refusal), at most once per
        ``REFUSAL_INTERVAL`` (later messages are ignored, so a stranger cannot make the bot
        spam); in a group, nothing. Bots are never answered: that invites reply loops.
        """
        if await self.allows(sender, chat_id, direct):
            return _ALLOW
        if not direct or sender.is_bot:
            self._note(sender, chat_id, "ignored", self._group_hint(sender))
            return _IGNORE
        if not self._replies.take(sender.id):
            return _IGNORE
        try:
            return await self._answer_stranger(sender, chat_id)
        except BaseException:
            self._replies.give_back(sender.id)  # nothing was said: the next message may try again
            raise

    async def answer_stranger(self, sender: Sender, chat_id: str) -> str:
        """What ``check`` answers a stranger in a direct chat, without its throttle: for a reply
        only they see, which the platform requires anyway (Slack's slash-command answer)."""
        reply = (await self._answer_stranger(sender, chat_id)).reply
        assert reply is not None
        return reply

    async def _answer_stranger(self, sender: Sender, chat_id: str) -> Verdict:
        allow = self._allow_hint(sender)
        if not self._pairs:
            self._note(sender, chat_id, "refused", f'{allow}, or set dm_policy = "pairing"')
            return Verdict(False, self.refusal_for(sender))
        assert self._pairing is not None
        code = await self._pairing.request_code(self._channel, sender.id, _display(sender))
        if code is None:
            self._note(
                sender,
                chat_id,
                "told to try later",
                f"too many pairing codes are pending ('autohands pairing list'); {allow}",
            )
            return Verdict(False, PAIRING_FULL_TEXT)
        self._note(
            sender,
            chat_id,
            "sent a pairing code to",
            f"approve it with 'autohands pairing approve CODE' ('autohands pairing list' shows it), or {allow}",
        )
        return Verdict(False, PAIRING_TEXT.format(code=code, user_id=sender.id))

    def _allow_hint(self, sender: Sender) -> str:
        return f'add "{sender.id}" to [channels.{self._channel}] allow_users'

    def _group_hint(self, sender: Sender) -> str:
        if sender.is_bot:
            return f"bots are let in only by allow_users; {self._allow_hint(sender)}"
        hint = f"{self._allow_hint(sender)} (or the chat to allow_chats)"
        return f"{hint}, or approve a pairing (they write to the bot in a direct chat)" if self._pairs else hint

    def _note(self, sender: Sender, chat_id: str, what: str, hint: str) -> None:
        """One log line per sender and kind of chat per ``REFUSAL_INTERVAL``."""
        direct = what != "ignored"
        if not self._logs.take((sender.id, direct)):
            return
        where = "in a direct chat" if direct else f"in chat {chat_id}"
        bot = "bot " if sender.is_bot else ""
        logger.info("%s: %s %s%s %s: not in allow_users; %s", self._channel, what, bot, _who(sender), where, hint)

    def refusal_for(self, sender: Sender) -> str:
        """The refusal text with the user's id filled in (plain replace: braces are safe)."""
        return self.config.refusal_text.replace("{user_id}", sender.id).replace(
            "{username}", sender.username or sender.name or sender.id
        )

    def policy_for(self, chat_id: str) -> GroupPolicy:
        return self.config.chat_policies.get(str(chat_id), self.config.group_policy)

    def addressed(self, direct: bool, mentioned: bool, replied_to_bot: bool, is_command: bool, chat_id: str) -> bool:
        """Whether a message is meant for the bot: always in a direct chat; in a group, as
        that chat's policy says."""
        if direct:
            return True
        policy = self.policy_for(chat_id)
        if policy == "all":
            return True
        if policy == "mention":
            return mentioned or replied_to_bot or is_command
        if policy == "commands":
            return is_command
        return False

    def sender(self, id: str, *, name: str = "", username: str | None = None, is_bot: bool = False) -> Sender:
        """Build an inbound's ``Sender`` with ``is_admin`` set from ``admins``."""
        username = username.lstrip("@") if username else None
        return self.with_admin(Sender(id=str(id), name=name, username=username, is_bot=is_bot))

    def with_admin(self, sender: Sender) -> Sender:
        return dataclasses.replace(sender, is_admin=self.is_admin(sender))


def _display(sender: Sender) -> str:
    return f"@{sender.username}" if sender.username else sender.name


def _who(sender: Sender) -> str:
    shown = _display(sender)
    return f"{shown} (id {sender.id})" if shown and shown != sender.id else f"id {sender.id}"


# ---------------------------------------------------------------------------- config warnings
_NUMERIC_ID = re.compile(r"-?\d+")


def is_numeric_id(entry: str) -> bool:
    """Telegram and Discord ids are numbers; anything else in an allow list is a username."""
    return bool(_NUMERIC_ID.fullmatch(entry.strip()))


@dataclasses.dataclass(frozen=True, slots=True)
class IdRule:
    """How a platform's user ids look, and what a name in an allow list means there."""

    is_id: Callable[[str], bool]
    names_hint: str = ""
    """Set when the platform matches ids only (a name matches nobody): how to find an id.
    Empty: a name matches a username, which can change hands."""


NUMERIC_IDS = IdRule(is_numeric_id)
"""Telegram's and Discord's: numbers; names match usernames."""


def access_warnings(
    name: str,
    config: AccessConfig,
    *,
    ids: IdRule | None,
    pairing: bool = True,
) -> list[str]:
    """What in ``config`` will not work as the operator likely means, one line each, naming
    ``[channels.NAME]``: nobody can use the bot; ``allow_users`` / ``admins`` entries that are
    names where ids are needed.

    Args:
        ids: tells an id from a name (``None``: no warning about names).
        pairing: whether the channel can hand out pairing codes (a hub-built channel can).
    """
    lines: list[str] = []
    c = config
    ways_in = c.allow_all or c.allow_users or c.allow_chats or c.admins
    closed = c.dm_policy == "allowlist" or (c.dm_policy == "pairing" and not pairing)
    if not ways_in and closed:
        lines.append(
            f"[channels.{name}]: nobody can use this bot: allow_users, allow_chats and admins are empty, "
            f'allow_all is false and dm_policy is "{c.dm_policy}"; add your user id to allow_users (the '
            'refusal shows each user theirs), or set dm_policy = "pairing" and approve people with '
            "'autohands pairing approve CODE'"
        )
    names = [e for e in (*c.allow_users, *c.admins) if ids is not None and not ids.is_id(e.strip().lstrip("@"))]
    if names and ids is not None and ids.names_hint:
        lines.append(
            f"[channels.{name}]: allow_users/admins entries {', '.join(names)} look like names, not ids, "
            f"and match nobody: {ids.names_hint}"
        )
    elif names:
        lines.append(
            f"[channels.{name}]: allow_users/admins entries {', '.join(names)} are usernames: a username "
            "can be changed, and then whoever takes it is let in; a user id cannot (each user sees "
            "theirs in the pairing or refusal message, and the log names it when they write)"
        )
    return lines


def section_warnings(
    model: type[AccessConfig],
    name: str,
    section: dict[str, Any],
    *,
    ids: IdRule,
) -> list[str]:
    """``Advising.config_warnings`` of a channel class: ``access_warnings`` of the raw section
    (``kind`` aside). A section that does not validate gives none: its errors are reported as
    errors, by ``config check``."""
    try:
        config = model.model_validate({k: v for k, v in section.items() if k != "kind"})
    except ValidationError:
        return []
    return access_warnings(name, config, ids=ids)
