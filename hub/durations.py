"""Durations as people read them, for the lines the hub writes (scheduler, outbox, CLI).

Here rather than in ``hub.scheduler.timeparse``: the outbox and ``autohands outbox`` use it too,
and importing the scheduler package would load APScheduler and the store for every CLI start.
"""

from __future__ import annotations


def human_duration(seconds: float) -> str:
    """``45 s``, ``12 min``, ``3.5 h``, ``2.0 days``."""
    seconds = int(seconds)
    if seconds < 90:
        return f"{seconds} s"
    if seconds < 5400:
        return f"{round(seconds / 60)} min"
    if seconds < 172800:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"
