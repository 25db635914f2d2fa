"""Tool calls shown in the conversation while the agent works, one line each.

One run's lines are one progress stream: partial outbounds (``final=False``) that share a
``stream`` id, each carrying every line so far. Where the platform edits messages the
``channels.delivery.Deliverer`` turns them into one message edited in place (at most about one
edit a second per chat), so ten tool calls are one message, not ten; the terminal prints what
each partial adds. Partials are not durable and never enter the model's history or the final
answer; a platform without edits does not show them.

Lines are only ever appended (a call's line is written once its outcome is known), since the
terminal prints a partial's new tail and ignores one that does not extend what it showed.
"""

from __future__ import annotations

import asyncio
import logging

from hub.agent import RunContext
from hub.messages import Outbound, new_id
from hub.tool_calls import call_line

from .approvals import ToolOutcome
from .config import AgentConfig, ShowToolCalls

log = logging.getLogger(__name__)


class ToolLines:
    """One run's tool-call lines (``[agent] show_tool_calls``), sent through ``ctx.send``."""

    def __init__(self, ctx: RunContext, show: ShowToolCalls) -> None:
        self._ctx = ctx
        self._show = show
        self._stream = new_id()
        self._text = ""
        self._gap = False
        self._lock = asyncio.Lock()

    @classmethod
    def for_run(cls, ctx: RunContext, config: AgentConfig) -> ToolLines | None:
        """The run's lines, or None when ``show_tool_calls`` is ``off``."""
        return None if config.show_tool_calls == "off" else cls(ctx, config.show_tool_calls)

    def after_text(self) -> None:
        """The model's text was just shown as a partial and its line may still be open (the
        terminal prints partials without a newline): start the next line on a line of its own."""
        self._gap = True

    async def report(self, outcome: ToolOutcome) -> None:
        """Add ``outcome``'s line (if shown at all) and send the lines so far; never raises
        but for cancellation, since the lines are a courtesy and the call's result stands."""
        if self._show == "refused" and outcome.status != "refused":
            return
        call = outcome.call
        line = call_line(call.name, outcome.args if outcome.args is not None else {}, outcome.status, outcome.reason)
        async with self._lock:  # concurrent calls: each partial must extend the one before
            self._text += ("\n" if self._gap else "") + line + "\n"
            self._gap = False
            inbound = self._ctx.inbound
            progress = Outbound(
                conversation=self._ctx.conversation,
                text=self._text,
                final=False,
                stream=self._stream,
                reply_to_platform_id=inbound.reply_to_platform_id,
                inbound_id=inbound.id,
                format="plain",
            )
            try:
                await self._ctx.send(progress)
            except Exception as exc:  # progress is best-effort, like every partial
                log.debug("tool line for %s not sent: %s", self._ctx.conversation.key, exc)
