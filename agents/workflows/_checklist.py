"""The plan as the user sees it: one checklist message, sent before the first step runs and
edited (``Outbound.edit_of``) as each step finishes.

The message is durable (not a stream partial), so every platform shows it; where a platform
edits messages it is one message ticked off in place. Sending is best-effort: the steps run
whether or not the list could be shown (only cancellation propagates).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Literal

from hub.agent import RunContext
from hub.messages import Outbound
from hub.tool_calls import call_summary

log = logging.getLogger(__name__)

Mark = Literal["todo", "running", "done", "failed", "skipped"]
MARKS: dict[Mark, str] = {"todo": "☐", "running": "…", "done": "☑", "failed": "✗", "skipped": "↷"}


def step_label(tool: str | None, arguments: Mapping[str, object], ask: str | None = None) -> str:
    """A step on one line: the tool and its first argument, or the question for the model."""
    if tool is None:
        return f"💭 {(ask or '').strip()[:60]}"
    return call_summary(tool, arguments)


class Checklist:
    """One run's plan as a checklist message (``title`` above one line per step)."""

    def __init__(self, ctx: RunContext, title: str, labels: list[str]) -> None:
        self._ctx = ctx
        self.title = title
        self.labels = list(labels)
        self.marks: list[Mark] = ["todo"] * len(labels)
        self.notes: list[str] = [""] * len(labels)
        self.footer = ""
        self._first: Outbound | None = None

    def render(self) -> str:
        lines = [self.title]
        for i, (label, mark, note) in enumerate(zip(self.labels, self.marks, self.notes, strict=True), 1):
            lines.append(f"{MARKS[mark]} {i}. {label}" + (f" — {note}" if note else ""))
        if self.footer:
            lines.append(self.footer)
        return "\n".join(lines)

    async def show(self) -> None:
        inbound = self._ctx.inbound
        first = Outbound(
            conversation=self._ctx.conversation,
            text=self.render(),
            reply_to_platform_id=inbound.reply_to_platform_id,
            inbound_id=inbound.id,
            format="plain",
        )
        self._first = first
        await self._send(first)

    async def mark(self, index: int, mark: Mark, note: str = "") -> None:
        self.marks[index], self.notes[index] = mark, note[:100]
        await self.update()

    async def replace(self, title: str, labels: list[str], *, keep: int) -> None:
        """A new plan (a replan): the first ``keep`` lines stay, the new steps follow."""
        self.title = title
        self.labels = [*self.labels[:keep], *labels]
        todo: list[Mark] = ["todo"] * len(labels)
        self.marks = [*self.marks[:keep], *todo]
        self.notes = [*self.notes[:keep], *([""] * len(labels))]
        await self.update()

    async def finish(self, footer: str) -> None:
        self.footer = footer
        await self.update()

    async def update(self) -> None:
        if self._first is None:
            return
        await self._send(
            Outbound(conversation=self._ctx.conversation, text=self.render(), edit_of=self._first.id, format="plain")
        )

    async def _send(self, outbound: Outbound) -> None:
        try:
            await self._ctx.send(outbound)
        except Exception as exc:  # the plan runs whether or not it could be shown
            log.debug("checklist for %s not sent: %s", self._ctx.conversation.key, exc)
