"""What the task service and its client beside a running hub share: who may see a task, which
moves are legal (``MOVES``) and how a refusal reads, and a new task's defaults."""

from __future__ import annotations

import secrets
from typing import Literal

from ..messages import ConversationRef, Sender
from .base import MOVES, Asker, Task, TaskError, TaskState

OPERATOR = Sender(id="operator", name="operator", is_admin=True)
"""The owner of a task submitted without one (a program embedding the hub, the CLI)."""
HUB_CONVERSATION = ConversationRef(channel="hub", chat="tasks")
"""The origin of a task submitted without a conversation: nothing is posted for it."""
ENDED: frozenset[TaskState] = frozenset({"completed", "failed", "cancelled"})
"""States a task leaves only by a retry (``events`` ends at them)."""
SETTLED: frozenset[TaskState] = ENDED | {"paused"}
"""States ``wait`` returns at."""

Command = Literal["pause", "cancel", "resume", "retry"]
_TARGET: dict[Command, TaskState] = {"pause": "paused", "cancel": "cancelled", "resume": "running", "retry": "pending"}


def new_task_id() -> str:
    return secrets.token_hex(4)


def may_see(task: Task, by: Sender | None) -> bool:
    """The owner (on the task's own channel, when ``by`` is an ``Asker``), an admin, or the
    operator (``None``)."""
    if by is None or by.is_admin:
        return True
    if by.id != task.owner.id:
        return False
    return not isinstance(by, Asker) or by.channel == task.conversation.channel


def visible(task: Task | None, task_id: str, by: Sender | None) -> Task:
    """``task`` if ``by`` may see it; else "no task", whether or not it exists."""
    if task is None or not may_see(task, by):
        raise TaskError(f"no task {task_id}")
    return task


def allowed(task: Task, command: Command) -> bool:
    """Whether a person may ``command`` the task now: its move is in ``MOVES`` (and a resume
    is of a paused task: a pending one starts by itself)."""
    return _TARGET[command] in MOVES[task.state] and (command != "resume" or task.state == "paused")


def check_command(task: Task, command: Command) -> None:
    """Raise ``TaskError`` naming the task's state and what can be done from it."""
    if allowed(task, command):
        return
    options = [c for c in _TARGET if allowed(task, c)]
    possible = " or ".join(f"{c} it" for c in options) if options else "nothing more can be done with it"
    raise TaskError(f"task {task.id} is {task.state}, so it cannot {command}; {possible}")


def check_move(task: Task, to: TaskState) -> None:
    """The hub's own moves: ``TaskError`` for one ``MOVES`` does not allow (a bug, or a race
    with a request)."""
    if to not in MOVES[task.state]:
        raise TaskError(f"task {task.id} is {task.state}, so it cannot become {to}")
