"""Tools from extensions (installed ``autohands.tools`` packages and ``[extensions] paths``),
kept in step with the hub's reloads.

``ExtensionTools.follow`` gives the agent a new registry after every reload that changed
something: the tools the agent was built with plus each enabled tool extension's. A run takes
the registry current at its start (``LLMAgent.use_tools``), so one in flight finishes with the
version it began with. An extension whose ``build`` raises, or that is not a ``ToolExtension``,
or whose tool names clash, is reported failed (one error line) and left out; the rest load.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from hub.extensions import ExtensionSource, Provided

from .base import Tool, ToolExtension, ToolRegistry
from .config import ToolsConfig

GROUP = "autohands.tools"


@dataclass(frozen=True, slots=True)
class ExtensionTools:
    """The registry the agent was built with (never changed) plus the extensions' tools."""

    base: ToolRegistry
    config: ToolsConfig
    source: ExtensionSource

    def registry(self) -> ToolRegistry:
        """A new registry: ``base`` plus every tool extension that builds cleanly."""
        tools: list[Tool] = []
        described: dict[str, str] = {}
        taken = {t.name for t in self.base}
        for provided in self.source.provided(GROUP):
            built = self._build(provided, taken)
            if built is not None:
                tools += built
                taken.update(t.name for t in built)
                if isinstance(provided.value, ToolExtension):
                    described.update(provided.value.categories)
        return self.base.extended(tools, described)

    def follow(self, use: Callable[[ToolRegistry], None]) -> Callable[[], None]:
        """Call ``use`` with a fresh registry after each reload; returns the unsubscribe."""
        return self.source.subscribe(lambda: use(self.registry()))

    def _build(self, provided: Provided, taken: set[str]) -> list[Tool] | None:
        ext = provided.value
        if not isinstance(ext, ToolExtension):
            self.source.fail(provided.manifest.id, f"{provided.name!r} is not a ToolExtension")
            return None
        try:
            tools = list(ext.build(self.config))
        except Exception as exc:  # someone else's code: isolate it, say why in one line
            self.source.fail(provided.manifest.id, f"its tools could not be built: {type(exc).__name__}: {exc}")
            return None
        wrong = [t for t in tools if not isinstance(t, Tool)]
        clash = sorted(t.name for t in tools if isinstance(t, Tool) and t.name in taken)
        if wrong or clash:
            why = "returned something that is not a Tool" if wrong else f"tool names already taken: {', '.join(clash)}"
            self.source.fail(provided.manifest.id, why)
            return None
        return tools
