"""The ``memory`` category: the model keeps, finds and forgets facts across conversations.

Every call acts with the scopes of the user who asked (``hub.memory.access``): the model can
never read or delete another user's memories, whatever arguments it sends.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel

from hub.errors import ToolFailed
from hub.memory.access import Visibility
from hub.memory.base import Hit, Scope

from ..memory import AgentMemory
from .base import Risk, Tool, ToolContext
from .decorator import tool

__all__ = ["memory_tools"]

MAX_MEMORY_CHARS = 2000
"""A memory is a fact, not a document: longer text is refused with this limit named."""


class RememberedFact(BaseModel):
    id: str
    saved_for: str
    """``you`` (the user, on every linked channel) or ``this conversation``."""


class RecalledFact(BaseModel):
    id: str
    text: str
    saved: str
    """The date it was saved (YYYY-MM-DD)."""
    whose: str
    """``user``, ``conversation`` or ``global`` (the operator's)."""


def _recalled(hit: Hit) -> RecalledFact:
    m = hit.memory
    return RecalledFact(id=m.id, text=m.text, saved=f"{m.created_at:%Y-%m-%d}", whose=m.scope.kind)


def memory_tools(memory: AgentMemory) -> list[Tool]:
    """``remember``, ``recall`` and ``forget`` on ``memory``, for the user of each call."""

    def who(ctx: ToolContext) -> Visibility:
        return memory.access.for_user(ctx.conversation.channel, ctx.sender.id, ctx.conversation)

    @tool(category="memory", risk=Risk.LOW)
    async def remember(ctx: ToolContext, text: str, about: Literal["user", "conversation"] = "user") -> RememberedFact:
        """Save a fact to remember in later conversations: a preference, a name, a date, a decision.
        Save one short self-contained sentence ("Ana's birthday is 12 May"), not the whole chat.

        Args:
            text: the fact, as one self-contained sentence.
            about: "user" (the user, on every channel; the default) or "conversation" (only this chat).
        """
        fact = " ".join(text.split())
        if not fact:
            raise ToolFailed("nothing to remember: text is empty")
        if len(fact) > MAX_MEMORY_CHARS:
            raise ToolFailed(f"a memory holds at most {MAX_MEMORY_CHARS} characters; save the fact, not the text")
        asker = who(ctx)
        scope: Scope | None = asker.conversation if about == "conversation" else asker.user
        saved = await memory.access.remember(asker, fact, source="remember", scope=scope)
        return RememberedFact(id=saved.id, saved_for="this conversation" if about == "conversation" else "you")

    @tool(category="memory", risk=Risk.LOW)
    async def recall(ctx: ToolContext, query: str, limit: int = 5) -> list[RecalledFact]:
        """Search what was saved about the user and this conversation, best match first.

        Args:
            query: words to look for, e.g. "sister birthday".
            limit: how many memories at most (1-20).
        """
        if not query.strip():
            raise ToolFailed("query is empty; say what to look for")
        hits = await memory.access.recall(who(ctx), query, limit=max(1, min(limit, 20)))
        return [_recalled(hit) for hit in hits]

    @tool(category="memory", risk=Risk.LOW)
    async def forget(ctx: ToolContext, memory_id: str) -> str:
        """Forget one saved memory of the user's or this conversation's, by its id (from recall).

        Args:
            memory_id: the memory's id, e.g. "3f9a1c2b7d0e".
        """
        if await memory.access.forget(who(ctx), memory_id.strip()):
            return f"forgot memory {memory_id.strip()}"
        raise ToolFailed(f"no memory {memory_id!r} of this user or conversation")

    return [remember, recall, forget]
