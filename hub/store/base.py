"""``StoreAPI``: the store as the rest of the hub uses it, and the values it hands out.

Two stores implement it: ``Store`` (``hub.store.sql``, the SQL database, the default) and
``MemoryStore`` (``hub.store.memory``, injected as ``Hub(settings, store=MemoryStore())``:
nothing survives the process). Every part is typed against ``StoreAPI``; a part that runs its
own SQL (the scheduler, whose jobs live in tables) is typed against ``SQLStoreAPI``, which only
``Store`` keeps, and ``has_sql`` tells the hub whether its store does. Only code that needs the
database itself (the CLI reading beside a running hub, benchmarks) names ``Store``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol, TypeGuard, TypeVar, runtime_checkable

from ..agent import HistoryItem, Usage
from ..messages import Inbound, Outbound

if TYPE_CHECKING:  # SQLAlchemy is loaded by the SQL store, not by this interface
    from sqlalchemy import Connection

T = TypeVar("T")


@dataclass(frozen=True, slots=True, kw_only=True)
class SessionSnapshot:
    """What a session needs from the store when it (re)enters memory."""

    history: list[HistoryItem] = field(default_factory=list)
    settings: dict[str, str] = field(default_factory=dict)


@dataclass(slots=True)
class WriteStats:
    """Counters of the group commits so far (benchmarks, tests)."""

    batches: int = 0
    """Transactions committed."""
    ops: int = 0
    """Write requests they carried."""
    commit_seconds: float = 0.0
    """Time spent committing (for SQLite, mostly the WAL's fsync): the event loop waits for
    it unless the commit went to the writer thread."""
    slow_commits: int = 0
    """Commits that took ``INLINE_COMMIT_MAX_SECONDS`` or more (a slow or busy disk)."""
    checkpoints: int = 0
    """WAL checkpoints finished (each: the bulk copied off the loop, then the tail on it)."""
    checkpoint_loop_seconds: float = 0.0
    """Time the event loop spent in the tail part of those checkpoints."""


class StoreAPI(Protocol):
    """Every call the hub makes on any store (``Hub``, sessions, outbox, channels' state)."""

    # ----------------------------------------------------------------- lifecycle (Hub)
    async def start(self) -> None: ...

    async def stop(self) -> None:
        """Drain what is queued, then close."""
        ...

    # ----------------------------------------------------------------- inbound (Hub, sessions)
    async def record_inbound(self, inbound: Inbound) -> Inbound | None:
        """Commit an inbound; returns it with its ``id``, or None if it was already recorded."""
        ...

    def mark_processing(self, inbound_id: int) -> Awaitable[None]:
        """Count one attempt and mark the inbound ``processing``, as its run starts.

        Queued at the call; the awaitable resolves once it is committed, and the caller awaits
        it before the run can do anything that might kill the hub."""
        ...

    def give_back_attempt(self, inbound_id: int) -> None:
        """Take back the attempt of a run the hub itself stopped (queued; ``stop`` drains it)."""
        ...

    async def finish_run(
        self,
        inbound: Inbound | None,
        *,
        reply: Outbound | None,
        remember: Sequence[HistoryItem] = (),
        replace_history: Sequence[HistoryItem] | None = None,
        usage: Sequence[tuple[str, str, Usage]] = (),
        status: str = "answered",
    ) -> None:
        """One unit: the last reply into the outbox, history, usage, the inbound's ``status``."""
        ...

    async def pending_inbound(self) -> list[tuple[Inbound, int]]:
        """Inbounds not answered yet, oldest first, each with the runs started for it."""
        ...

    # ----------------------------------------------------------------- outbound (sessions, outbox)
    async def record_outbound(self, outbound: Outbound) -> None:
        """Put a reply into the outbox (``pending``)."""
        ...

    def mark_sent(self, outbound_id: str, platform_ids: Iterable[str]) -> Awaitable[None]:
        """Mark a reply ``sent`` with the platform's ids; queued at the call, resolved once committed."""
        ...

    def mark_failed(self, outbound_id: str, error: str) -> Awaitable[None]:
        """Mark a reply ``failed`` (given up on); queued at the call, resolved once committed."""
        ...

    async def note_send_failure(self, outbound_id: str, error: str) -> None:
        """Count one failed try of a reply that stays pending and keep its error."""
        ...

    async def pending_outbound(self) -> list[Outbound]:
        """Replies not sent yet, oldest first."""
        ...

    async def take_resend_requests(self) -> list[Outbound]:
        """The pending replies ``autohands outbox retry`` asked for since the last call."""
        ...

    # ----------------------------------------------------------------- sessions
    async def load_session(self, key: str) -> SessionSnapshot:
        """History and settings of the conversation ``key``."""
        ...

    async def clear_history(self, key: str) -> None: ...

    async def set_setting(self, key: str, name: str, value: str | None) -> dict[str, str]:
        """Set (None: remove) one conversation setting; returns all of the conversation's."""
        ...

    # ----------------------------------------------------------------- state (channels)
    async def state_get(self, key: str) -> str | None: ...

    async def state_set(self, key: str, value: str) -> None: ...


@runtime_checkable
class SQLStoreAPI(StoreAPI, Protocol):
    """A store whose data is in SQL tables that callers may query and write (``Store``): the
    scheduler keeps its jobs there, ``autohands outbox`` reads and resends replies there."""

    async def run_write(self, fn: Callable[[Connection], T]) -> T:
        """Run ``fn(conn)`` inside the next write transaction and return its result."""
        ...

    async def run_read(self, fn: Callable[[Connection], T]) -> T:
        """Run ``fn(conn)`` on a reader connection (sees every committed write)."""
        ...

    def allocate_message_id(self) -> int:
        """A fresh inbound id for a row written through ``run_write`` (the scheduler's fires)."""
        ...


def has_sql(store: StoreAPI) -> TypeGuard[SQLStoreAPI]:
    """Whether ``store`` keeps its data in SQL tables (``Store``; not ``MemoryStore``), so a part
    whose state lives in tables (the scheduler) can run on it."""
    return isinstance(store, SQLStoreAPI)


class ScopedState:
    """A ``KeyValueState`` for one channel, namespaced in the store's state."""

    def __init__(self, store: StoreAPI, prefix: str) -> None:
        self._store = store
        self._prefix = prefix

    async def get(self, key: str) -> str | None:
        return await self._store.state_get(f"{self._prefix}:{key}")

    async def set(self, key: str, value: str) -> None:
        await self._store.state_set(f"{self._prefix}:{key}", value)
