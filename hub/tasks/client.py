"""``open_tasks``: ``Tasks`` on the database beside a running hub (``autohands tasks``).

Nothing runs here and no hub lock is taken: a submit writes a pending row, a control call checks
the move against the row (``MOVES``, so a refusal is told at once) and writes it as a request;
the running hub takes requests every ``[tasks] poll_seconds`` and applies them
(``TaskService``). ``wait`` and ``events`` poll the row.
"""

from __future__ import annotations

import asyncio
import builtins
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

from ..config import Settings
from ..messages import ConversationRef, Sender
from ._rules import ENDED, HUB_CONVERSATION, OPERATOR, SETTLED, Command, check_command, may_see, new_task_id, visible
from .base import BACKGROUND, Task, TaskError, TaskEvent, Tasks, TaskState, WorkflowMode

if TYPE_CHECKING:  # the store is imported when the client opens (hub.store.tasks imports this package)
    from ..store.tasks import TaskStore

__all__ = ["TaskClient", "open_tasks"]


@asynccontextmanager
async def open_tasks(settings: Settings) -> AsyncIterator[TaskClient]:
    """``Tasks`` on the hub's database for the block's duration (``async with``)."""
    from ..store import Store
    from ..store.tasks import SQLTaskStore

    store = Store.from_settings(settings, lock=False)
    async with store:
        yield TaskClient(SQLTaskStore(store), poll_seconds=settings.tasks.poll_seconds)


class TaskClient:
    """``Tasks`` through the ``tasks`` table; the running hub does the work."""

    def __init__(self, tasks: TaskStore, *, poll_seconds: float = 1.0) -> None:
        self._tasks = tasks
        self._poll = poll_seconds

    async def submit(
        self,
        text: str,
        *,
        conversation: ConversationRef | None = None,
        owner: Sender | None = None,
        mode: WorkflowMode = "auto",
        priority: int = BACKGROUND,
    ) -> Task:
        task = Task(
            id=new_task_id(),
            text=text,
            conversation=conversation or HUB_CONVERSATION,
            owner=owner or OPERATOR,
            mode=mode,
            priority=priority,
        )
        await self._tasks.insert(task, requested="submit")
        return task

    async def get(self, task_id: str, *, by: Sender | None = None) -> Task:
        return visible(await self._tasks.get(task_id), task_id, by)

    async def list(self, *, by: Sender | None = None, states: Sequence[TaskState] = ()) -> builtins.list[Task]:
        owner = None if by is None or by.is_admin else by.id
        found = await self._tasks.find(owner_id=owner, states=states)
        return [t for t in found if may_see(t, by)]  # an Asker: only its own channel's

    async def _request(self, task_id: str, by: Sender | None, command: Command, move: str) -> Task:
        task = await self.get(task_id, by=by)
        check_command(task, command)
        await self._tasks.request(task_id, move)
        return task

    async def cancel(self, task_id: str, *, by: Sender | None = None) -> Task:
        return await self._request(task_id, by, "cancel", "cancel")

    async def pause(self, task_id: str, *, by: Sender | None = None) -> Task:
        return await self._request(task_id, by, "pause", "pause")

    async def resume(self, task_id: str, *, by: Sender | None = None) -> Task:
        return await self._request(task_id, by, "resume", "resume")

    async def retry(self, task_id: str, *, by: Sender | None = None, from_start: bool = False) -> Task:
        return await self._request(task_id, by, "retry", "retry-start" if from_start else "retry")

    async def wait(self, task_id: str, *, timeout: float | None = None) -> Task:
        async with asyncio.timeout(timeout):
            while True:
                task = await self.get(task_id)
                if task.state in SETTLED and not await self._tasks.requested(task_id):
                    return task
                await asyncio.sleep(self._poll)

    async def execute(self, text: str, *, mode: WorkflowMode = "auto", timeout: float | None = None) -> Task:
        task = await self.submit(text, mode=mode)
        return await self.wait(task.id, timeout=timeout)

    def events(self, task_id: str) -> AsyncIterator[TaskEvent]:
        return self._events(task_id)

    async def _events(self, task_id: str) -> AsyncIterator[TaskEvent]:
        """State changes as polling sees them (steps are seen only by the hub)."""
        last: TaskState | None = None
        while True:
            task = await self._tasks.get(task_id)
            if task is None:
                raise TaskError(f"no task {task_id}")
            if task.state != last:
                last = task.state
                yield TaskEvent(task_id=task_id, kind="state", state=task.state, detail=task.error or "")
                if task.state in ENDED:
                    return
            await asyncio.sleep(self._poll)


_: type[Tasks] = TaskClient
"""Checked by mypy: ``TaskClient`` keeps to ``Tasks``."""
