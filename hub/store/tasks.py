"""The tasks table (``hub.tasks``): rows ↔ ``Task``, and the SQL the task service runs.

``SQLTaskStore`` keeps tasks in the ``tasks`` table through ``SQLStoreAPI.run_write`` /
``run_read``; a task's saved state and the outbounds it posts (progress, result) commit in one
transaction, so a result is posted once. ``MemoryTaskStore`` is its stand-in beside a
``MemoryStore``. ``open_task_store`` picks the one a store can hold.
"""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from datetime import datetime
from typing import Any, Protocol

import orjson
from sqlalchemy import Connection, insert, select, update

from ..agent import HistoryItem
from ..messages import ConversationRef, Outbound, Sender, utcnow
from ..tasks.base import Task, TaskState, WorkflowMode
from ._rows import utc
from .base import SQLStoreAPI, StoreAPI, has_sql
from .codec import outbound_to_json
from .tables import OUTBOX, TASKS

__all__ = [
    "MemoryTaskStore",
    "SQLTaskStore",
    "TaskStore",
    "checkpoint_from_json",
    "checkpoint_to_json",
    "open_task_store",
]


class TaskStore(Protocol):
    """Where tasks are kept (the task service and ``autohands tasks`` beside a running hub)."""

    async def insert(self, task: Task, *, requested: str = "") -> None: ...

    async def get(self, task_id: str) -> Task | None: ...

    async def find(self, *, owner_id: str | None = None, states: Sequence[TaskState] = ()) -> list[Task]:
        """Newest first; every owner's when ``owner_id`` is None."""
        ...

    async def save(self, task: Task, *, post: Sequence[Outbound] = ()) -> None:
        """Write the task's state, attempts, result, error, priority and checkpoint, and put
        ``post`` into the outbox, in one transaction."""
        ...

    async def unfinished(self) -> builtins.list[Task]:
        """Running then pending tasks, oldest first (what a starting hub takes up again)."""
        ...

    async def request(self, task_id: str, move: str) -> None:
        """Ask the running hub for a move (``submit``, ``cancel``, ``pause``, ``resume``,
        ``retry``, ``retry-start``)."""
        ...

    async def requested(self, task_id: str) -> str:
        """The move asked of the task that the hub has not taken yet ("" for none)."""
        ...

    async def take_requests(self) -> builtins.list[tuple[str, str]]:
        """The (task id, move) requests made since the last call, oldest first; cleared."""
        ...


def checkpoint_to_json(items: Sequence[HistoryItem]) -> str:
    return orjson.dumps([[i.kind, i.data, i.created_at.isoformat()] for i in items]).decode()


def checkpoint_from_json(raw: str) -> tuple[HistoryItem, ...]:
    return tuple(
        HistoryItem(kind=k, data=d, created_at=datetime.fromisoformat(at)) for k, d, at in orjson.loads(raw or "[]")
    )


def _owner_json(s: Sender) -> str:
    return orjson.dumps([s.id, s.name, s.username, s.is_bot, s.is_admin]).decode()


def _owner_from(raw: str) -> Sender:
    v = orjson.loads(raw)
    return Sender(id=v[0], name=v[1], username=v[2], is_bot=v[3], is_admin=v[4])


def _values(task: Task) -> dict[str, Any]:
    return {
        "priority": task.priority,
        "mode": task.mode,
        "state": task.state,
        "attempts": task.attempts,
        "result": task.result,
        "error": task.error,
        "updated_at": task.updated_at,
        "checkpoint": checkpoint_to_json(task.checkpoint),
    }


def _row(task: Task, requested: str) -> dict[str, Any]:
    return {
        **_values(task),
        "id": task.id,
        "text": task.text,
        "conversation_key": task.conversation.key,
        "owner_id": task.owner.id,
        "owner": _owner_json(task.owner),
        "created_at": task.created_at,
        "requested": requested,
    }


def _task(r: Any) -> Task:
    mode: WorkflowMode = r.mode
    state: TaskState = r.state
    return Task(
        id=r.id,
        text=r.text,
        conversation=ConversationRef.from_key(r.conversation_key),
        owner=_owner_from(r.owner),
        priority=r.priority,
        mode=mode,
        state=state,
        attempts=r.attempts,
        result=r.result,
        error=r.error,
        created_at=utc(r.created_at),
        updated_at=utc(r.updated_at),
        checkpoint=checkpoint_from_json(r.checkpoint),
    )


def _outbox_values(o: Outbound, now: datetime) -> dict[str, Any]:
    conv = o.conversation
    return {
        "id": o.id,
        "channel": conv.channel,
        "conversation_key": conv.key,
        "inbound_id": o.inbound_id,
        "payload": outbound_to_json(o),
        "status": "pending",
        "platform_ids": "",
        "attempts": 0,
        "error": "",
        "created_at": now,
        "sent_at": None,
    }


class SQLTaskStore:
    """``TaskStore`` on the SQL store's ``tasks`` table."""

    def __init__(self, store: SQLStoreAPI) -> None:
        self._store = store

    async def insert(self, task: Task, *, requested: str = "") -> None:
        row = _row(task, requested)
        await self._store.run_write(lambda c: c.execute(insert(TASKS).values(**row)))

    async def get(self, task_id: str) -> Task | None:
        def q(c: Connection) -> Task | None:
            r = c.execute(select(TASKS).where(TASKS.c.id == task_id)).first()
            return _task(r) if r is not None else None

        return await self._store.run_read(q)

    async def find(self, *, owner_id: str | None = None, states: Sequence[TaskState] = ()) -> list[Task]:
        stmt = select(TASKS).order_by(TASKS.c.created_at.desc(), TASKS.c.id.desc())
        if owner_id is not None:
            stmt = stmt.where(TASKS.c.owner_id == owner_id)
        if states:
            stmt = stmt.where(TASKS.c.state.in_(tuple(states)))
        return await self._store.run_read(lambda c: [_task(r) for r in c.execute(stmt)])

    async def save(self, task: Task, *, post: Sequence[Outbound] = ()) -> None:
        values = _values(task)

        def w(c: Connection) -> None:
            c.execute(update(TASKS).where(TASKS.c.id == task.id).values(**values))
            now = utcnow()
            for o in post:
                c.execute(insert(OUTBOX).values(**_outbox_values(o, now)))

        await self._store.run_write(w)

    async def unfinished(self) -> builtins.list[Task]:
        stmt = select(TASKS).where(TASKS.c.state.in_(("pending", "running"))).order_by(TASKS.c.created_at)
        tasks = await self._store.run_read(lambda c: [_task(r) for r in c.execute(stmt)])
        return [t for t in tasks if t.state == "running"] + [t for t in tasks if t.state == "pending"]

    async def request(self, task_id: str, move: str) -> None:
        stmt = update(TASKS).where(TASKS.c.id == task_id).values(requested=move)
        await self._store.run_write(lambda c: c.execute(stmt))

    async def requested(self, task_id: str) -> str:
        stmt = select(TASKS.c.requested).where(TASKS.c.id == task_id)
        return await self._store.run_read(lambda c: c.execute(stmt).scalar() or "")

    async def take_requests(self) -> builtins.list[tuple[str, str]]:
        asked = select(TASKS.c.id, TASKS.c.requested).where(TASKS.c.requested != "").order_by(TASKS.c.updated_at)
        if not await self._store.run_read(lambda c: c.execute(asked.limit(1)).first() is not None):
            return []  # the usual case: a read, no write

        def take(c: Connection) -> list[tuple[str, str]]:
            rows = [(r.id, r.requested) for r in c.execute(asked)]
            if rows:
                c.execute(update(TASKS).where(TASKS.c.requested != "").values(requested=""))
            return rows

        return await self._store.run_write(take)


class MemoryTaskStore:
    """``TaskStore`` in memory, beside a ``MemoryStore``: outbounds go to its outbox."""

    def __init__(self, store: StoreAPI) -> None:
        self._store = store
        self._tasks: dict[str, Task] = {}

    async def insert(self, task: Task, *, requested: str = "") -> None:
        self._tasks[task.id] = task

    async def get(self, task_id: str) -> Task | None:
        return self._tasks.get(task_id)

    async def find(self, *, owner_id: str | None = None, states: Sequence[TaskState] = ()) -> list[Task]:
        found = [
            t
            for t in self._tasks.values()
            if (owner_id is None or t.owner.id == owner_id) and (not states or t.state in states)
        ]
        return sorted(found, key=lambda t: (t.created_at, t.id), reverse=True)

    async def save(self, task: Task, *, post: Sequence[Outbound] = ()) -> None:
        self._tasks[task.id] = task
        for o in post:
            await self._store.record_outbound(o)

    async def unfinished(self) -> builtins.list[Task]:
        return []  # nothing outlives the process

    async def request(self, task_id: str, move: str) -> None:
        raise NotImplementedError("requests beside a hub need the SQL store")

    async def requested(self, task_id: str) -> str:
        return ""

    async def take_requests(self) -> builtins.list[tuple[str, str]]:
        return []


def open_task_store(store: StoreAPI) -> TaskStore:
    """The tasks of ``store``: in its SQL tables, or in memory beside a ``MemoryStore``."""
    if has_sql(store):
        return SQLTaskStore(store)
    return MemoryTaskStore(store)
