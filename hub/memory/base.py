"""What every memory backend is typed against: the values it keeps and the ``MemoryBackend``
protocol (issue 25).

The isolation rule lives in the protocol's signatures: every call names the scopes its caller
may see, and a backend never returns, changes or deletes a memory outside them. Callers build
those scopes from who is asking (a user's own scope, their conversation's, the global one), so
one user can never reach another's memories through any tool, command or API.
"""

from __future__ import annotations

import builtins
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal, Protocol, runtime_checkable

from hub.errors import AutoHandsError
from hub.messages import ConversationRef

__all__ = ["Hit", "HitKind", "Memory", "MemoryBackend", "Scope", "ScopeDenied", "ScopeKind"]

ScopeKind = Literal["user", "conversation", "global"]
HitKind = Literal["fulltext", "vector", "hybrid"]

_KINDS: frozenset[str] = frozenset(("user", "conversation", "global"))


class ScopeDenied(AutoHandsError):
    """A write or a bulk delete named a scope its caller may not see."""


@dataclass(frozen=True, slots=True)
class Scope:
    """Whose a memory is.

    ``user``: key ``channel:user_id`` (the channel-qualified id, so two platforms' equal ids
    never meet); ``conversation``: key ``ConversationRef.key``; ``global``: key ``""``
    (operator-curated memories every user may read).
    """

    kind: ScopeKind
    key: str = ""

    def __post_init__(self) -> None:
        if self.kind not in _KINDS:
            raise ValueError(f"memory scope kind must be user, conversation or global, not {self.kind!r}")
        if (self.kind == "global") != (self.key == ""):
            raise ValueError(f"a {self.kind} memory scope {'has no' if self.kind == 'global' else 'needs a'} key")

    @classmethod
    def user(cls, channel: str, user_id: str) -> Scope:
        """A user's scope on one channel (linked identities map to one of them before this)."""
        return cls("user", f"{channel}:{user_id}")

    @classmethod
    def conversation(cls, ref: ConversationRef) -> Scope:
        """One conversation's scope."""
        return cls("conversation", ref.key)

    @classmethod
    def shared(cls) -> Scope:
        """The global scope (``global`` is a keyword, hence the name)."""
        return cls("global")


@dataclass(frozen=True, slots=True, kw_only=True)
class Memory:
    """One remembered fact."""

    id: str
    """The backend's id, short enough to type in ``/forget <id>``."""
    scope: Scope
    text: str
    created_at: datetime
    """When it was stored (UTC)."""
    source: str
    """What wrote it: ``remember`` (the tool), ``compaction``, ``import``, ``operator``…"""
    metadata: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class Hit:
    """A memory found by a search, with how well and how it matched."""

    memory: Memory
    score: float
    """Higher is better; comparable only within one search's results."""
    via: HitKind
    """Which ranking found it (``hybrid``: reciprocal rank fusion of the others)."""


@runtime_checkable
class MemoryBackend(Protocol):
    """Store, retrieve, search and delete memories, never outside the caller's ``scopes``."""

    async def store(
        self,
        text: str,
        *,
        scope: Scope,
        source: str,
        scopes: Sequence[Scope],
        metadata: Mapping[str, str] | None = None,
    ) -> Memory:
        """Keep ``text`` in ``scope``; raises ``ScopeDenied`` unless ``scope`` is in ``scopes``."""
        ...

    async def get(self, memory_id: str, *, scopes: Sequence[Scope]) -> Memory | None:
        """The memory, or ``None`` if there is none with that id in ``scopes``."""
        ...

    async def search(self, query: str, *, scopes: Sequence[Scope], limit: int = 5) -> builtins.list[Hit]:
        """The memories in ``scopes`` that best match ``query``, best first; the query is text
        (never a search syntax)."""
        ...

    async def delete(self, memory_id: str, *, scopes: Sequence[Scope]) -> bool:
        """Delete one memory; false if there is none with that id in ``scopes``."""
        ...

    async def list(self, *, scopes: Sequence[Scope], limit: int = 100) -> builtins.list[Memory]:
        """The memories in ``scopes``, newest first."""
        ...

    async def delete_scope(self, scope: Scope, *, scopes: Sequence[Scope]) -> int:
        """Delete every memory of ``scope`` (``/forget all``); how many went. Raises
        ``ScopeDenied`` unless ``scope`` is in ``scopes``."""
        ...

    async def close(self) -> None:
        """Release the backend's resources; safe to call twice."""
        ...
