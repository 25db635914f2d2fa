"""Who may see which memories: the one place that turns "who is asking" into scopes.

Tools, commands, automatic recall and compaction all go through ``MemoryAccess`` with a
``Visibility`` built from the asker (``for_user``), so the rule is written once: a user reads
their own scope (every identity linked to theirs in ``[memory] links``), the conversation's and
the global one; writes go to their own (first linked) identity or the conversation; they may
delete only their own and their conversation's memories; the global scope is the operator's.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from hub.memory.base import Hit, Memory, MemoryBackend, Scope
from hub.memory.config import MemoryConfig
from hub.messages import ConversationRef

__all__ = ["IdentityLinks", "MemoryAccess", "Visibility"]

log = logging.getLogger(__name__)


class IdentityLinks:
    """``[memory] links``: each ``channel:user_id`` → every identity of the same person, the
    first (where new memories go) first."""

    def __init__(self, links: Mapping[str, Sequence[str]]) -> None:
        self._linked: dict[str, tuple[str, ...]] = {}
        for identities in links.values():
            group = tuple(dict.fromkeys(identities))
            for identity in group:
                self._linked[identity] = group

    def identities(self, channel: str, user_id: str) -> tuple[str, ...]:
        """``channel:user_id`` and the identities linked to it, the one new memories go to first."""
        identity = f"{channel}:{user_id}"
        return self._linked.get(identity, (identity,))


@dataclass(frozen=True, slots=True, kw_only=True)
class Visibility:
    """What one asker may read, write and delete."""

    own: tuple[Scope, ...]
    """The asker's user scopes (all linked identities); the first is where new memories go."""
    conversation: Scope | None = None
    """The conversation being had, if any (a CLI or dashboard call has none)."""

    @property
    def user(self) -> Scope:
        """Where the asker's new memories go."""
        return self.own[0]

    @property
    def readable(self) -> tuple[Scope, ...]:
        """Their own scopes, the conversation's and the global one."""
        extra = (self.conversation,) if self.conversation is not None else ()
        return (*self.own, *extra, Scope.shared())

    @property
    def deletable(self) -> tuple[Scope, ...]:
        """Their own scopes and the conversation's (never the global one: the operator's)."""
        extra = (self.conversation,) if self.conversation is not None else ()
        return (*self.own, *extra)


class MemoryAccess:
    """The hub's memory: one backend, the identity links, and the rules of who sees what."""

    def __init__(
        self, backend: MemoryBackend, *, name: str, links: IdentityLinks, config: MemoryConfig | None = None
    ) -> None:
        self.backend = backend
        self.name = name
        """The backend's entry-point name (``sqlite``, ``vector``, ``postgres``)."""
        self.links = links
        self.config = config or MemoryConfig()
        """``[memory]`` as validated when it was opened (recall settings for the agent)."""

    def for_user(self, channel: str, user_id: str, conversation: ConversationRef | None = None) -> Visibility:
        """What ``user_id`` on ``channel`` may see, in ``conversation`` if given."""
        own = tuple(Scope("user", identity) for identity in self.links.identities(channel, user_id))
        return Visibility(own=own, conversation=Scope.conversation(conversation) if conversation else None)

    async def remember(self, who: Visibility, text: str, *, source: str, scope: Scope | None = None) -> Memory:
        """Keep ``text`` in ``scope`` (default: the asker's own); ``ScopeDenied`` outside
        ``who.deletable`` (nobody but the operator writes the global scope)."""
        return await self.backend.store(text, scope=scope or who.user, source=source, scopes=who.deletable)

    async def recall(self, who: Visibility, query: str, *, limit: int) -> list[Hit]:
        """The memories ``who`` may read that best match ``query``."""
        return await self.backend.search(query, scopes=who.readable, limit=limit)

    async def list(self, who: Visibility, *, limit: int = 100) -> list[Memory]:
        """The memories ``who`` may read, newest first."""
        return await self.backend.list(scopes=who.readable, limit=limit)

    async def forget(self, who: Visibility, memory_id: str) -> bool:
        """Delete one of ``who``'s own or their conversation's memories; false if none such."""
        return await self.backend.delete(memory_id, scopes=who.deletable)

    async def forget_all(self, who: Visibility) -> int:
        """Delete every memory of ``who``'s own scopes (every linked identity); how many went.
        The conversation's and the global memories stay."""
        removed = 0
        for scope in who.own:
            removed += await self.backend.delete_scope(scope, scopes=who.own)
        log.info("forgot %d memories of %s", removed, who.user.key)
        return removed

    async def close(self) -> None:
        await self.backend.close()
