"""Workflow modes: how one run orders its model calls and tool calls.

``react`` (the model decides after every step), ``batch`` (independent calls at once),
``chain`` (ordered calls, ``{{name}}`` passing outputs on) and ``plan`` (Plan-and-Execute: a
validated plan run by an executor). The run's setting ``mode`` (``/mode``, a task's mode) picks
one; ``auto`` takes the intent step's suggestion (``agents.intent.Intent.mode``), else ``react``.
A resumed run always continues as ``react``: its checkpoint is a history, not a plan.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Final, Literal, get_args

from hub.messages import Outbound

from ._base import Run
from .batch import batch
from .chain import chain
from .plan import plan
from .react import react

__all__ = ["MODES", "MODE_SETTING", "Mode", "Run", "choose_mode", "run_mode"]

Mode = Literal["react", "batch", "chain", "plan"]
"""A mode that runs (``auto`` is a choice among them)."""
MODES: Final[tuple[Mode, ...]] = get_args(Mode)
MODE_SETTING = "mode"

_RUNNERS: dict[Mode, Callable[[Run], AsyncIterator[Outbound]]] = {
    "react": react,
    "batch": batch,
    "chain": chain,
    "plan": plan,
}


def _as_mode(value: str | None) -> Mode | None:
    for mode in MODES:
        if value == mode:
            return mode
    return None


def choose_mode(setting: str | None, suggested: str | None, *, resuming: bool = False) -> Mode:
    """The mode a run takes: the setting, unless ``auto`` (or unset, or unknown): the suggestion."""
    if resuming:
        return "react"
    return _as_mode(setting) or _as_mode(suggested) or "react"


def run_mode(mode: Mode, run: Run) -> AsyncIterator[Outbound]:
    return _RUNNERS[mode](run)
