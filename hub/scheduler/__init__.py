"""Delayed and recurring jobs whose answers go back where they were asked.

``service`` holds the ``Scheduler`` (APScheduler 3 as the timer, the hub's ``jobs`` and ``fires``
tables as the truth), ``commands`` the chat commands ``/remind /every /jobs /cancel /tz``,
``timeparse`` the time phrases and triggers. The tables and their SQL are ``hub.store.jobs``.
"""

from ..store.jobs import Job
from .commands import granted_note, scheduler_commands
from .service import Scheduler, SchedulerConfig, build_scheduler
from .timeparse import ScheduleError, TriggerSpec, local_time, zone

__all__ = [
    "Job",
    "ScheduleError",
    "Scheduler",
    "SchedulerConfig",
    "TriggerSpec",
    "build_scheduler",
    "granted_note",
    "local_time",
    "scheduler_commands",
    "zone",
]
