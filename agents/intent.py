"""Intent analysis: which tool categories a request needs and which workflow mode suits it,
and the last formatting step. ``[agent] intent = "off" | "auto"``.

The run (agents/runtime.py, agents/workflows/) calls ``analyse`` once at its start, offers the
model ``ToolSet.specs`` on every model call (read each turn: it changes when the model widens
the set), and passes its final text through ``format_answer``.

This module's first version is a pass-through (every tool, no mode, the text as is) that the
intent work replaces; the interface is what the runtime relies on.
"""

from __future__ import annotations

from dataclasses import dataclass

from hub.agent import RunContext

from .providers.base import Provider, ToolSpec
from .tools.base import ToolRegistry

__all__ = ["Intent", "ToolSet", "analyse", "format_answer"]


@dataclass(frozen=True, slots=True)
class Intent:
    categories: frozenset[str] | None = None
    """The tool categories the request needs; None: all of them."""
    mode: str | None = None
    """A suggested workflow mode (``react``, ``batch``, ``chain``, ``plan``); None: no opinion."""
    text: str | None = None
    """The request restated cleanly, if the analysis made one."""
    form: str | None = None
    """A form the answer must take (``a table``, ``JSON``, ``German``); None: as it comes."""


class ToolSet:
    """The tools a run offers the model: the intent's categories, widened once on request."""

    def __init__(self, registry: ToolRegistry, specs: tuple[ToolSpec, ...], categories: frozenset[str] | None) -> None:
        self._registry = registry
        self._all = specs
        self.categories = categories
        self.widened = False

    @property
    def specs(self) -> tuple[ToolSpec, ...]:
        return self._all

    def widen(self) -> None:
        self.widened = True


async def analyse(
    ctx: RunContext, registry: ToolRegistry, specs: tuple[ToolSpec, ...], provider: Provider, model: str | None
) -> tuple[Intent, ToolSet]:
    """The request's intent and the tool set its run offers (all of ``specs`` when off)."""
    return Intent(), ToolSet(registry, specs, None)


async def format_answer(ctx: RunContext, intent: Intent, text: str, provider: Provider, model: str | None) -> str:
    """``text`` in the form the request asked for, when it asked for one; else as it is."""
    return text
