"""Tasks: background work with an id, a priority, a state machine and a checkpoint (``base``)."""

from .base import BACKGROUND, INTERACTIVE, JOB, MOVES, Task, TaskError, TaskEvent, Tasks, TaskState, WorkflowMode

__all__ = [
    "BACKGROUND",
    "INTERACTIVE",
    "JOB",
    "MOVES",
    "Task",
    "TaskError",
    "TaskEvent",
    "TaskState",
    "Tasks",
    "WorkflowMode",
]
