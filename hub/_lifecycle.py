"""The one lifecycle rule of the hub's long-lived parts (docs/ARCHITECTURE.md, "Lifecycle").

``Hub``, ``Store``, ``SessionManager``, ``OutboxDispatcher``, ``Gateway`` and ``Scheduler`` each
live once: new → running → stopped.

* ``start`` on a part that is starting or running raises ``RuntimeError`` ("… already
  started"); so does ``start`` on a stopped part ("… cannot start again"): build a new one.
* A ``start`` that fails undoes what it did before re-raising; the part is then as new.
* ``stop`` on a part that is not running (never started, its start failed, already stopped)
  does nothing.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Literal

__all__ = ["STOP_GRACE_SECONDS", "Lifecycle"]

STOP_GRACE_SECONDS = 10.0
"""How long a stopping part lets the work it has in flight finish before cancelling it: agent
runs (the default of ``[sessions] stop_grace_seconds``), sends to a platform
(``OutboxDispatcher.stop``), fires being committed (``Scheduler.stop``). What is cut short is
taken up again after the next start."""


class Lifecycle:
    """Where one part is in its life; the part calls ``starting`` and ``stopping``.

    Args:
        part: the part's name in the errors (``"Store"``).
    """

    __slots__ = ("_part", "_state")

    def __init__(self, part: str) -> None:
        self._part = part
        self._state: Literal["new", "starting", "running", "stopped"] = "new"

    @property
    def running(self) -> bool:
        return self._state == "running"

    @contextmanager
    def starting(self) -> Iterator[None]:
        """Wrap the body of ``start``: refuses a second start, and a failed start leaves the part new.

        Raises:
            RuntimeError: the part is starting or running already, or has stopped.
        """
        if self._state == "stopped":
            raise RuntimeError(f"{self._part} was stopped and cannot start again; build a new one")
        if self._state != "new":
            raise RuntimeError(f"{self._part} already started")
        self._state = "starting"
        try:
            yield
        except BaseException:
            self._state = "new"
            raise
        self._state = "running"

    def stopping(self) -> bool:
        """Called first in ``stop``: True once, for the stop that ends a running part; False
        (the stop does nothing) when the part is not running."""
        if self._state != "running":
            return False
        self._state = "stopped"
        return True
