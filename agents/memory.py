"""The agent's side of memory: automatic recall into the user turn, compaction summaries kept as
memories, and the ``memory`` tool category (``agents.tools.memory``).

The hub owns the backend and the rule of who sees what (``hub.memory.access``); this module only
decides when the agent reads and writes, with the scopes of the run's sender.
"""

from __future__ import annotations

import logging

from hub.agent import RunContext
from hub.errors import AutoHandsError
from hub.memory.access import MemoryAccess, Visibility
from hub.memory.base import Scope
from hub.memory.config import MemoryConfig
from hub.memory.recall import RecallNote, recall_note, recalled_ids

from .history import USER

__all__ = ["AgentMemory"]

log = logging.getLogger(__name__)

COMPACTION_SOURCE = "compaction"
"""``Memory.source`` of a summary kept when history was compacted."""


class AgentMemory:
    """The hub's memory as one agent uses it, with ``[memory]``'s recall settings."""

    def __init__(self, access: MemoryAccess, config: MemoryConfig) -> None:
        self.access = access
        self.config = config

    @classmethod
    def from_services(cls, access: MemoryAccess | None) -> AgentMemory | None:
        """The hub's memory with the ``[memory]`` it was opened with; None when it runs without."""
        return None if access is None else cls(access, access.config)

    def visibility(self, ctx: RunContext) -> Visibility:
        """What the run's sender may see, in the run's conversation."""
        return self.access.for_user(ctx.conversation.channel, ctx.sender.id, ctx.conversation)

    async def note(self, ctx: RunContext) -> RecallNote:
        """Automatic recall for this run's message: what to add to the user turn (maybe nothing).
        A memory an earlier turn's note holds is still in the prompt, so it is not added again
        (after compaction it may be, once)."""
        inbound = ctx.inbound
        if inbound.kind not in ("message", "job") or not inbound.text.strip():
            return RecallNote("")
        earlier = (str(item.data.get("text", "")) for item in ctx.history if item.kind == USER)
        return await recall_note(
            self.access,
            self.visibility(ctx),
            inbound.text,
            tokens=self.config.recall_tokens,
            limit=self.config.recall_limit,
            already=recalled_ids(earlier),
            min_similarity=self.config.recall_min_similarity,
        )

    async def keep_summary(self, ctx: RunContext, summary: str) -> None:
        """Keep what compaction summarised: in the sender's own memories in a one-to-one chat
        (so ``/forget all`` takes it too), else in the conversation's. Never raises."""
        if not self.config.summarise_compaction or not summary.strip():
            return
        who = self.visibility(ctx)
        scope: Scope | None = who.user if ctx.inbound.direct else who.conversation
        try:
            await self.access.remember(
                who,
                summary,
                source=COMPACTION_SOURCE,
                scope=scope,
            )
        except (AutoHandsError, OSError) as exc:
            log.warning("keeping the compaction summary as a memory failed (%s)", type(exc).__name__)
