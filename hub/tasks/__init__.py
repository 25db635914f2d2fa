"""Tasks: background work with an id, a priority, a state machine and a checkpoint (``base``).

``TaskService`` (``service``) is the hub's ``Tasks``; ``open_tasks`` (``client``) the one beside
a running hub; ``RunPool`` (``pool``) admits every agent run; ``TaskRunContext`` (``context``)
is a task run's ``RunContext``.
"""

from .base import BACKGROUND, INTERACTIVE, JOB, MOVES, Asker, Task, TaskError, TaskEvent, Tasks, TaskState, WorkflowMode
from .client import TaskClient, open_tasks
from .pool import RunPool

__all__ = [
    "BACKGROUND",
    "INTERACTIVE",
    "JOB",
    "MOVES",
    "Asker",
    "RunPool",
    "Task",
    "TaskClient",
    "TaskError",
    "TaskEvent",
    "TaskState",
    "Tasks",
    "WorkflowMode",
    "open_tasks",
]
