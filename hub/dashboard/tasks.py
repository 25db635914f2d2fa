"""The dashboard's tasks view: ``GET /api/admin/tasks`` and ``POST /api/admin/tasks/{id}/{action}``
(cancel, pause, resume, retry), for admin principals with the dashboard's CSRF rules (``_api``).

An admin may control every task (``hub.tasks.Tasks``); a move the task's state does not allow
is answered 409 with the service's one line, an unknown task 404.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from aiohttp import web

from ..auth import Principal
from ..messages import Sender
from ..tasks import Task, TaskError, Tasks
from ..tasks.http import task_json
from ._api import AdminHandler, error, json
from ._deps import DashboardDeps

__all__ = ["control", "list_tasks"]

log = logging.getLogger(__name__)


def _admin(who: Principal) -> Sender:
    return Sender(id=who.id, name=who.id, is_admin=True)


def list_tasks(deps: DashboardDeps) -> AdminHandler:
    async def handle(request: web.Request, who: Principal) -> web.Response:
        if deps.tasks is None:
            return json({"tasks": [], "enabled": False})
        found = await deps.tasks.list(by=_admin(who))
        return json({"enabled": True, "tasks": [task_json(t) for t in found[:500]]})

    return handle


def control(deps: DashboardDeps) -> AdminHandler:
    async def handle(request: web.Request, who: Principal) -> web.Response:
        tasks = deps.tasks
        task_id, action = request.match_info["task_id"], request.match_info["action"]
        move = _moves(tasks, task_id, _admin(who)).get(action) if tasks is not None else None
        if tasks is None or move is None:
            return error(404, f"no action {action!r}: cancel, pause, resume or retry")
        try:
            await tasks.get(task_id, by=_admin(who))
        except TaskError as exc:
            return error(404, str(exc))
        try:
            task = await move()
        except TaskError as exc:
            return error(409, str(exc))
        log.info("task %s: %s from the dashboard by %s", task.id, action, who.id)
        return json({"task": task_json(task)})

    return handle


def _moves(tasks: Tasks, task_id: str, by: Sender) -> dict[str, Callable[[], Awaitable[Task]]]:
    return {
        "cancel": lambda: tasks.cancel(task_id, by=by),
        "pause": lambda: tasks.pause(task_id, by=by),
        "resume": lambda: tasks.resume(task_id, by=by),
        "retry": lambda: tasks.retry(task_id, by=by),
    }
