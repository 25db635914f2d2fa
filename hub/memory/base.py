"""What every memory backend is typed against: the values it keeps and the ``MemoryBackend``
protocol (issue 25).

The isolation rule lives in the protocol's signatures: every call names the scopes its caller
may see, and a backend never returns, changes or deletes a memory outside them. Callers build
those scopes from who is asking (a user's own scope, their conversation's, the global one), so
one user can never reach another's memories through any tool, command or API.
"""

from __future__ import annotations

import builtins
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Literal, Protocol, runtime_checkable

from hub.errors import AutoHandsError
from hub.messages import ConversationRef

if TYPE_CHECKING:
    from hub.extensions import Manifest

__all__ = [
    "Embedder",
    "EmbeddingRefused",
    "EmbeddingUnavailable",
    "Hit",
    "HitKind",
    "Memory",
    "MemoryBackend",
    "MemoryBackendClass",
    "MemoryOptions",
    "Scope",
    "ScopeDenied",
    "ScopeKind",
    "require_scope",
]

ScopeKind = Literal["user", "conversation", "global"]
HitKind = Literal["fulltext", "vector", "hybrid"]

_KINDS: frozenset[str] = frozenset(("user", "conversation", "global"))


class ScopeDenied(AutoHandsError):
    """A write or a bulk delete named a scope its caller may not see."""


class EmbeddingUnavailable(AutoHandsError):
    """The embedding endpoint could not embed (down, refused, timed out, or answered nonsense);
    the message names the cause and never holds a secret."""


class EmbeddingRefused(EmbeddingUnavailable):
    """The endpoint answered, refusing the request, maybe for its texts (too long for the model,
    content the server rejects), maybe for any text (a wrong model name). An ``Embedder`` raises it
    for such answers; ``EmbeddingGate`` finds out which.

    Args:
        message: the cause, one line, without secrets (a server's message may quote the text:
            it is never logged beside a memory's id).
        status: the HTTP status, if there was one.
    """

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


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


def require_scope(scope: Scope, scopes: Sequence[Scope]) -> None:
    """Raise ``ScopeDenied`` unless ``scope`` is among the caller's ``scopes`` (every backend's
    check before a write or a bulk delete)."""
    if scope not in scopes:
        raise ScopeDenied(f"memory scope {scope.kind} {scope.key!r} is not among the caller's scopes")


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

    @classmethod
    def new(cls, text: str, *, scope: Scope, source: str, metadata: Mapping[str, str] | None = None) -> Memory:
        """A memory stored now, with a fresh id (12 hex digits: short enough to type)."""
        return cls(
            id=secrets.token_hex(6),
            scope=scope,
            text=text,
            created_at=datetime.now(UTC),
            source=source,
            metadata=dict(metadata or {}),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Hit:
    """A memory found by a search, with how well and how it matched."""

    memory: Memory
    score: float
    """Higher is better; comparable only within one search's results."""
    via: HitKind
    """Which ranking found it (``hybrid``: reciprocal rank fusion of the others)."""
    similarity: float | None = None
    """The cosine similarity of its embedding to the query's, when a vector ranking found it
    (automatic recall's bar: ``[memory] recall_min_similarity``)."""


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

    async def scope_counts(self) -> builtins.list[tuple[Scope, int]]:
        """Every scope holding memories, with how many (the operator's view: the CLI's export,
        ``doctor``, the dashboard's list of users). Never reached from a user's tool or command."""
        ...

    async def restore(self, memories: Sequence[Memory]) -> int:
        """Insert memories as they are (id, scope, time, source kept: ``autohands memory
        import``); an id already present is skipped, so importing twice changes nothing. How
        many were added. The operator's call, like ``scope_counts``."""
        ...

    async def close(self) -> None:
        """Release the backend's resources; safe to call twice."""
        ...


@runtime_checkable
class Embedder(Protocol):
    """Turns texts into vectors: an OpenAI-compatible ``/v1/embeddings`` endpoint
    (``hub.memory.embeddings.OpenAIEmbedder``) or anything else that can."""

    @property
    def model(self) -> str:
        """The embedding model's id; vectors of different models are never compared."""
        ...

    async def embed(self, texts: Sequence[str]) -> builtins.list[builtins.list[float]]:
        """One vector per text, in order. Raises ``EmbeddingUnavailable`` when it cannot."""
        ...

    async def aclose(self) -> None:
        """Release the HTTP client; safe to call twice."""
        ...


@dataclass(frozen=True, slots=True, kw_only=True)
class MemoryOptions:
    """What a backend is opened with (``MemoryBackendClass.from_options``), resolved from
    ``[memory]`` by ``hub.memory.open.open_memory``."""

    path: Path
    """The SQLite file (``sqlite``, ``vector``): ``[memory] path`` under the data directory."""
    url: str = ""
    """An SQLAlchemy URL (``postgres``): ``[memory] url``, else the ``[store] url``."""
    embedder: Embedder | None = None
    """Set when ``[memory] embedding_provider`` and ``embedding_model`` are (``vector``,
    ``postgres``)."""


class MemoryBackendClass(Protocol):
    """What entry points of group ``autohands.memory`` name: a class carrying its manifest that
    opens a backend from ``MemoryOptions`` (cheaply: connections open on first use)."""

    @property
    def manifest(self) -> Manifest: ...

    def from_options(self, options: MemoryOptions) -> MemoryBackend:
        """The backend; raises ``ConfigError`` naming the ``[memory]`` key when ``options``
        lack what it needs (``vector`` without an embedder)."""
        ...
