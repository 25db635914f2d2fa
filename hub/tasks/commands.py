"""The task pool's chat commands (they work without any model).

    /task <what to do>        /task status|cancel|pause|resume|retry <id>        /tasks

``/task <what to do>`` answers with the task's id at once; the task runs in its own session and
the core posts its progress and result in this chat or thread (``Task.conversation``). Both are
control commands: they answer even while this conversation's own run is busy.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import TypeGuard, get_args

from ..commands import Command, CommandCall, CommandRegistry
from ..durations import human_duration
from ..messages import Sender, utcnow
from .base import Asker, Task, TaskError, Tasks, WorkflowMode

__all__ = ["CONTROLS", "MODES", "is_mode", "register_task_commands", "task_line", "task_summary"]

CONTROLS = ("status", "cancel", "pause", "resume", "retry")
"""The words after ``/task`` that address an existing task rather than submit a new one."""
FROM_START = ("--from-start", "from-start", "fresh")
"""After ``/task retry <id>``: run it again from the start, not from its checkpoint."""
MODES: tuple[WorkflowMode, ...] = get_args(WorkflowMode)
FIRST_WORDS = 8
USAGE = (
    "Usage: /task <what to do> — runs it in the background and posts the result here; "
    "/task status|cancel|pause|resume|retry <id>; /tasks lists yours."
)
_DONE = {
    "cancel": "Cancelled",
    "pause": "Pausing",
    "resume": "Resumed",
    "retry": "Retrying",
}


def is_mode(value: object) -> TypeGuard[WorkflowMode]:
    """Whether ``value`` names a workflow mode (a request body's or a command line's)."""
    return value in MODES


def first_words(text: str, count: int = FIRST_WORDS) -> str:
    words = text.split()
    return " ".join(words[:count]) + (" …" if len(words) > count else "")


def age(at: datetime, now: datetime | None = None) -> str:
    return human_duration(max(0.0, ((now or utcnow()) - at).total_seconds()))


def task_line(task: Task, now: datetime | None = None) -> str:
    """One task in a listing: id, state, age, first words (``/tasks``, ``autohands tasks list``)."""
    return f"{task.id} — {task.state}, {age(task.created_at, now)} ago — {first_words(task.text)}"


def task_summary(task: Task) -> str:
    """A task in full (``/task status``, ``autohands tasks show``): what, state, and outcome."""
    lines = [
        f"Task {task.id}: {task.state} (mode {task.mode}, priority {task.priority}, attempts {task.attempts})",
        f"Asked {age(task.created_at)} ago by {task.owner.name or task.owner.id}: {task.text}",
    ]
    if task.result is not None:
        lines.append(f"Result: {task.result}")
    if task.error is not None:
        lines.append(f"Error: {task.error}")
    return "\n".join(lines)


def register_task_commands(commands: CommandRegistry, service: Callable[[], Tasks]) -> None:
    """Add ``/task`` and ``/tasks``. ``service`` gives the hub's task service when a command
    runs: commands are registered before the channels are built (they learn the list), the
    service later, with the sessions it shares the run pool with."""

    async def task(call: CommandCall) -> str:
        tasks = service()
        args = call.args.strip()
        verb, _, rest = args.partition(" ")
        words = rest.split()
        if verb.lower() in CONTROLS and 1 <= len(words) <= 2:
            return await _control(tasks, verb.lower(), words, _asker(call, admin=True))
        if not args:
            return USAGE
        made = await tasks.submit(args, conversation=call.inbound.conversation, owner=call.inbound.sender)
        return (
            f"Task {made.id} is queued; I will post its progress and result here. "
            f"(/task status {made.id}, /task cancel {made.id})"
        )

    async def list_(call: CommandCall) -> str:
        found = await service().list(by=_asker(call, admin=False))
        if not found:
            return "You have no tasks. Start one with /task <what to do>."
        now = utcnow()
        return "\n".join(["Your tasks (newest first):", *(task_line(t, now) for t in found)])

    commands.add(
        Command(name="task", description="run something in the background", handler=task, usage="<what>", control=True)
    )
    commands.add(Command(name="tasks", description="your background tasks", handler=list_, control=True))


def _asker(call: CommandCall, *, admin: bool) -> Asker:
    """Who asks, on the channel they wrote on. ``/tasks`` lists the sender's own tasks even for
    an admin (``admin=False``), who may still control all of them."""
    sender = call.inbound.sender
    return Asker(
        channel=call.inbound.conversation.channel,
        id=sender.id,
        name=sender.name,
        username=sender.username,
        is_bot=sender.is_bot,
        is_admin=admin and sender.is_admin,
    )


async def _control(tasks: Tasks, verb: str, words: list[str], by: Sender) -> str:
    task_id, extra = words[0], words[1:]
    from_start = bool(extra) and extra[0].lower() in FROM_START
    if extra and not (verb == "retry" and from_start):
        return USAGE
    actions: dict[str, Callable[[], Awaitable[Task]]] = {
        "status": lambda: tasks.get(task_id, by=by),
        "cancel": lambda: tasks.cancel(task_id, by=by),
        "pause": lambda: tasks.pause(task_id, by=by),
        "resume": lambda: tasks.resume(task_id, by=by),
        "retry": lambda: tasks.retry(task_id, by=by, from_start=from_start),
    }
    try:
        done = await actions[verb]()
    except TaskError as exc:
        return f"Sorry: {exc}"
    if verb == "status":
        return task_summary(done)
    where = " from the start" if from_start else ""
    return f"{_DONE[verb]} task {done.id}{where} (now {done.state})."
