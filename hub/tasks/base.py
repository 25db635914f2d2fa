"""Tasks: the values and the contract every surface shares (chat, CLI, HTTP, Python, dashboard).

A task is a request run in the background: it gets an id at once, waits in the run pool's
priority queue, runs in a workflow mode, and posts its result in the conversation it came from.
The hub's ``TaskService`` (``hub/tasks/service.py``) implements ``Tasks``; the state machine is
``MOVES`` and nothing else.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal, Protocol

from ..agent import HistoryItem
from ..errors import AutoHandsError
from ..messages import ConversationRef, Sender, utcnow

__all__ = [
    "BACKGROUND",
    "INTERACTIVE",
    "JOB",
    "MOVES",
    "Asker",
    "Task",
    "TaskError",
    "TaskEvent",
    "TaskState",
    "Tasks",
    "WorkflowMode",
]

TaskState = Literal["pending", "running", "paused", "completed", "failed", "cancelled"]
WorkflowMode = Literal["auto", "react", "batch", "chain", "plan"]

MOVES: dict[TaskState, frozenset[TaskState]] = {
    "pending": frozenset({"running", "cancelled"}),
    "running": frozenset({"completed", "paused", "cancelled", "failed"}),
    "paused": frozenset({"running"}),
    "failed": frozenset({"pending"}),
    "cancelled": frozenset({"pending"}),
    "completed": frozenset(),
}
"""The only moves: pending → running → completed; running → paused → running (resume); pending
or running → cancelled; running → failed; failed or cancelled → pending (retry). Anything else
(cancelling a paused task: resume it first, or retrying a completed one) is a ``TaskError``."""

# Run-pool priorities: lower runs first; FIFO within one level (hub/tasks/pool.py).
INTERACTIVE = 0
"""A person waits: chat turns, API requests."""
JOB = 10
"""A scheduled job's run."""
BACKGROUND = 20
"""A task submitted to run in the background (the default of ``submit``)."""


class TaskError(AutoHandsError):
    """A task command that cannot be done: no such task, not yours, or a move ``MOVES`` does
    not allow (the message names the task's state and what is possible from it)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Asker(Sender):
    """Who asks, as a surface knows them: with the channel they wrote on. Platform ids are only
    unique within their platform (a Telegram id and a Discord id may be the same digits), so chat
    commands and HTTP pass an ``Asker`` as ``by``: a task is its owner's on its own channel only.
    A plain ``Sender`` (a program embedding the hub, tests) is matched by id alone."""

    channel: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Task:
    id: str
    text: str
    """What to do, as submitted."""
    conversation: ConversationRef
    """Where it was asked: its progress and result are posted there."""
    owner: Sender
    priority: int = BACKGROUND
    mode: WorkflowMode = "auto"
    state: TaskState = "pending"
    attempts: int = 0
    result: str | None = None
    error: str | None = None
    created_at: datetime = field(default_factory=utcnow)
    updated_at: datetime = field(default_factory=utcnow)
    checkpoint: tuple[HistoryItem, ...] = ()
    """The run's history so far (``Checkpointing.step``): where resume and retry continue."""


@dataclass(frozen=True, slots=True, kw_only=True)
class TaskEvent:
    """One change of a task, in order: a state move or a step (``GET /v1/tasks/{id}/events``)."""

    task_id: str
    kind: Literal["state", "step"]
    state: TaskState
    detail: str = ""
    """The step's label, or why the state changed (an error, who cancelled)."""
    at: datetime = field(default_factory=utcnow)


class Tasks(Protocol):
    """The task service, as chat commands, the CLI, HTTP, the dashboard and programs use it.

    ``by`` is who asks: only a task's owner or an admin (``Sender.is_admin``) may see or control
    it; anyone else gets ``TaskError`` ("no task …", not revealing that it exists)."""

    async def submit(
        self,
        text: str,
        *,
        conversation: ConversationRef | None = None,
        owner: Sender | None = None,
        mode: WorkflowMode = "auto",
        priority: int = BACKGROUND,
    ) -> Task:
        """Record a pending task and return it at once (no conversation: the hub's own, for
        programs embedding it; no owner: the local operator)."""
        ...

    async def get(self, task_id: str, *, by: Sender | None = None) -> Task: ...

    async def list(self, *, by: Sender | None = None, states: Sequence[TaskState] = ()) -> list[Task]:
        """Newest first; ``by``'s own tasks, or every task for an admin or ``None`` (the operator)."""
        ...

    async def cancel(self, task_id: str, *, by: Sender | None = None) -> Task: ...

    async def pause(self, task_id: str, *, by: Sender | None = None) -> Task: ...

    async def resume(self, task_id: str, *, by: Sender | None = None) -> Task: ...

    async def retry(self, task_id: str, *, by: Sender | None = None, from_start: bool = False) -> Task: ...

    async def wait(self, task_id: str, *, timeout: float | None = None) -> Task:
        """Until the task is completed, failed, cancelled or paused (TimeoutError after ``timeout``)."""
        ...

    async def execute(self, text: str, *, mode: WorkflowMode = "auto", timeout: float | None = None) -> Task:
        """``submit`` then ``wait``: one call for a program embedding the hub."""
        ...

    def events(self, task_id: str) -> AsyncIterator[TaskEvent]:
        """The task's events from now on, ending after a final state."""
        ...
