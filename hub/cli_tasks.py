"""``autohands tasks``: the task pool from the command line, beside a running hub.

    autohands tasks submit "…" [--mode auto|react|batch|chain|plan] [--priority N] [--wait]
    autohands tasks list [--state STATE]
    autohands tasks show ID
    autohands tasks cancel|pause|resume ID
    autohands tasks retry ID [--from-start]
    autohands tasks wait ID [--timeout SECONDS]

They go through ``hub.tasks.open_tasks(settings)``: the database is the truth and the running hub
takes up what is submitted or asked (as ``autohands jobs`` works). The operator at the terminal
may see and control every task. Exit status: 0 done, 1 the task or the store says no (one line
on stderr), 2 a usage error; ``--wait`` and ``wait`` exit 1 unless the task completed.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import TYPE_CHECKING, get_args

from .cli_base import Command, Parser, positive_int
from .config import Settings
from .tasks.base import TaskState, WorkflowMode

if TYPE_CHECKING:  # the store and the service are imported when a command runs
    from .tasks.base import Task, Tasks

_ACTIONS = ("submit", "list", "show", "cancel", "pause", "resume", "retry", "wait")
_MODES: tuple[str, ...] = get_args(WorkflowMode)
_STATES: tuple[str, ...] = get_args(TaskState)


def _add_tasks(sub: argparse._SubParsersAction[Parser], common: Parser) -> None:
    """The ``tasks`` command and its actions, under the CLI's subcommands ``sub``."""
    tasks = sub.add_parser("tasks", parents=[common], help="background tasks: submit, list, control")
    actions = tasks.add_subparsers(dest="tasks_command", metavar="ACTION", parser_class=Parser)
    submit = actions.add_parser("submit", parents=[common], help="submit a task (prints its id)")
    submit.add_argument("text", help="what to do")
    submit.add_argument("--mode", choices=_MODES, default="auto", help="workflow mode (default auto)")
    submit.add_argument("--priority", type=int, default=None, help="lower runs first (default 20, background)")
    submit.add_argument("--wait", action="store_true", help="wait for it to end and print its result")
    submit.add_argument("--timeout", type=positive_int, default=None, metavar="SECONDS", help="with --wait")
    listing = actions.add_parser("list", parents=[common], help="list tasks, newest first")
    listing.add_argument("--state", choices=_STATES, action="append", default=[], help="only these (repeatable)")
    for name, what in (
        ("show", "one task in full"),
        ("cancel", "cancel a pending or running task"),
        ("pause", "pause a running task at its next step"),
        ("resume", "resume a paused task"),
        ("retry", "run a failed or cancelled task again"),
        ("wait", "wait for a task to end and print its result"),
    ):
        action = actions.add_parser(name, parents=[common], help=what)
        action.add_argument("task_id", metavar="ID")
        if name == "retry":
            action.add_argument("--from-start", action="store_true", help="not from its checkpoint")
        if name == "wait":
            action.add_argument("--timeout", type=positive_int, default=None, metavar="SECONDS")


def _tasks(settings: Settings, args: argparse.Namespace, parser: Parser) -> int:
    if args.tasks_command not in _ACTIONS:
        parser.error(f"'tasks' needs an action: {', '.join(_ACTIONS)}")
    return asyncio.run(cli_tasks(settings, args))


async def cli_tasks(settings: Settings, args: argparse.Namespace) -> int:
    """Run one ``autohands tasks`` action; errors are one line on stderr and exit 1."""
    from .errors import StoreError
    from .tasks import TaskError, open_tasks

    try:
        async with open_tasks(settings) as tasks:
            return await _act(tasks, args)
    except (TaskError, StoreError) as exc:
        return _fail(str(exc))
    except TimeoutError:
        return _fail(
            f"task {args.task_id} has not ended after {args.timeout} s; it goes on (see 'autohands tasks show')"
        )


async def _act(tasks: Tasks, args: argparse.Namespace) -> int:
    from .tasks.commands import is_mode, task_line, task_summary

    command: str = args.tasks_command
    if command == "submit":
        mode = args.mode if is_mode(args.mode) else "auto"
        extra = {} if args.priority is None else {"priority": args.priority}
        task = await tasks.submit(args.text, mode=mode, **extra)
        print(f"task {task.id} submitted ({task.state})", flush=True)
        if not args.wait:
            return 0
        args.task_id = task.id
        return _ended(await tasks.wait(task.id, timeout=args.timeout))
    if command == "list":
        found = await tasks.list(states=args.state)
        print("\n".join(task_line(t) for t in found) if found else "no tasks")
        return 0
    if command == "show":
        print(task_summary(await tasks.get(args.task_id)))
        return 0
    if command == "wait":
        return _ended(await tasks.wait(args.task_id, timeout=args.timeout))
    return await _move(tasks, command, args)


async def _move(tasks: Tasks, command: str, args: argparse.Namespace) -> int:
    task_id: str = args.task_id
    if command == "cancel":
        task = await tasks.cancel(task_id)
    elif command == "pause":
        task = await tasks.pause(task_id)
    elif command == "resume":
        task = await tasks.resume(task_id)
    else:
        task = await tasks.retry(task_id, from_start=args.from_start)
    print(f"task {task.id}: {command} asked (it was {task.state}); the running hub does it")
    return 0


def _ended(task: Task) -> int:
    """After a wait: the result on stdout (exit 0), or why it did not complete (exit 1)."""
    if task.state == "completed":
        print(task.result or "")
        return 0
    why = f": {task.error}" if task.error else ""
    return _fail(f"task {task.id} {task.state}{why}")


def _fail(message: str) -> int:
    print(f"autohands: error: {message}", file=sys.stderr)
    return 1


TASKS = Command("tasks", _add_tasks, _tasks)
