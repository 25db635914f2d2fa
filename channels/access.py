"""Who may talk to the bot, and when a group message is meant for it.

"Access control before intelligence" (docs/PLATFORMS.md G4): a channel asks ``AccessPolicy.decide``
before anything reaches the store or the agent.

Decision on the default: **empty allow lists with ``allow_all = false`` deny everyone.** A
freshly configured bot token is public (anyone can find a Telegram bot by name), and an agent
with tools must not be usable by strangers because the operator forgot a line of config. The
refusal tells the user their id, so the operator only has to copy it into ``allow_users``.
Set ``allow_all = true`` to open a bot deliberately.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable
from typing import Any, Literal

from pydantic import BaseModel, Field, field_validator

from hub.messages import Sender

__all__ = ["AccessConfig", "AccessPolicy", "Decision", "GroupPolicy"]

logger = logging.getLogger(__name__)

GroupPolicy = Literal["mention", "all", "commands", "off"]
"""When a group message is for the bot: ``mention`` (mentioned, replied to, or a command),
``all`` (every message), ``commands`` (commands only), ``off`` (never)."""

Decision = Literal["allow", "refuse", "ignore"]

DEFAULT_REFUSAL = (
    "Sorry, I'm a private assistant and I can't talk with you. If you think you should have "
    "access, ask the person who runs me to add your id ({user_id}) to the allowed users."
)

REFUSAL_INTERVAL = 600.0
"""At most one refusal per user in this many seconds; later messages are ignored silently."""

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
    allow_chats: list[str] = Field(default_factory=list)
    admins: list[str] = Field(default_factory=list)
    """Admins are always allowed, and may use admin commands and cancel others' jobs."""
    group_policy: GroupPolicy = "mention"
    chat_policies: dict[str, GroupPolicy] = Field(default_factory=dict)
    """Per-chat overrides of ``group_policy``, keyed by chat id."""
    refusal_text: str = DEFAULT_REFUSAL
    """Sent once (per user per 10 min) to an unknown user in a direct chat; ``{user_id}`` and
    ``{username}`` are filled in."""
    allow_all: bool = False
    """Let anyone talk to the bot. Off by default: empty allow lists deny everyone."""

    @field_validator("allow_users", "allow_chats", "admins", mode="before")
    @classmethod
    def _coerce_ids(cls, value: Any) -> list[str]:
        return _ids(value)

    @field_validator("chat_policies", mode="before")
    @classmethod
    def _coerce_keys(cls, value: Any) -> Any:
        return {str(k): v for k, v in value.items()} if isinstance(value, dict) else value


class AccessPolicy:
    """Applies an ``AccessConfig``.

    Args:
        config: the channel's config (any ``AccessConfig`` subclass).
        clock: monotonic seconds, for the refusal throttle (injectable for tests).
        match_usernames: also match ``allow_users`` / ``admins`` against ``Sender.username``.
            Slack turns it off: its usernames are deprecated and not unique across workspaces
            (Slack Connect), so a name there proves nothing about who is asking.
    """

    def __init__(
        self,
        config: AccessConfig,
        *,
        clock: Callable[[], float] = time.monotonic,
        match_usernames: bool = True,
    ) -> None:
        self.config = config
        self._match_usernames = match_usernames
        self._users = frozenset(_norm(u) for u in config.allow_users)
        self._chats = frozenset(c.strip() for c in config.allow_chats)
        self._admins = frozenset(_norm(a) for a in config.admins)
        self._clock = clock
        self._refused: dict[str, float] = {}
        if not (config.allow_all or self._users or self._chats or self._admins):
            logger.warning(
                "access: no allow_users, allow_chats or admins and allow_all is false; "
                "everyone will be refused (refusals show each user their id)"
            )

    def _matches(self, sender: Sender, names: frozenset[str]) -> bool:
        if _norm(sender.id) in names:
            return True
        return self._match_usernames and bool(sender.username) and _norm(sender.username or "") in names

    def is_admin(self, sender: Sender) -> bool:
        return self._matches(sender, self._admins)

    def is_allowed(self, sender: Sender, chat_id: str) -> bool:
        return (
            self.config.allow_all
            or str(chat_id).strip() in self._chats
            or self._matches(sender, self._users)
            or self.is_admin(sender)
        )

    def decide(self, sender: Sender, chat_id: str, direct: bool) -> Decision:
        """``allow``; ``refuse`` (send ``refusal_for(sender)``); or ``ignore`` silently.

        An unknown user is refused in a direct chat, at most once per 10 minutes (later
        messages are ignored, so a stranger cannot make the bot spam); in a group, ignored.
        Bots that are not allowed are always ignored: refusing them invites reply loops.
        """
        if self.is_allowed(sender, chat_id):
            return "allow"
        if not direct or sender.is_bot:
            return "ignore"
        now = self._clock()
        last = self._refused.get(sender.id)
        if last is not None and now - last < REFUSAL_INTERVAL:
            return "ignore"
        self._remember_refusal(sender.id, now)
        logger.info("access: refused unknown user %s in a direct chat", sender.id)
        return "refuse"

    def _remember_refusal(self, user_id: str, now: float) -> None:
        if len(self._refused) >= _MAX_REMEMBERED:
            self._refused = {k: t for k, t in self._refused.items() if now - t < REFUSAL_INTERVAL}
            while len(self._refused) >= _MAX_REMEMBERED:  # all recent: drop the oldest
                self._refused.pop(next(iter(self._refused)))
        self._refused.pop(user_id, None)
        self._refused[user_id] = now

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
