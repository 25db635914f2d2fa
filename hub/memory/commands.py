"""The memory's chat commands (they work without any model):

    /memory                   your memories, newest first
    /memory <words>           the ones that best match <words>
    /forget <id>              forget one (yours or this conversation's)
    /forget all               forget every memory of yours, on every linked identity

A user sees and forgets only their own memories, this conversation's and (seeing only) the
operator's global ones: ``MemoryAccess`` builds the scopes from the command's sender.
"""

from __future__ import annotations

from collections.abc import Sequence

from hub.commands import Command, CommandCall, CommandRegistry
from hub.memory.access import MemoryAccess, Visibility
from hub.memory.base import Memory, Scope

__all__ = ["LIST_LIMIT", "memory_line", "register_memory_commands"]

LIST_LIMIT = 20
"""Memories one ``/memory`` answer shows at most."""
_LINE_CHARS = 200
FORGET_USAGE = "Usage: /forget <id> — forgets one memory (its id is in /memory); /forget all — forgets all of yours."


def memory_line(memory: Memory) -> str:
    """One memory in a listing: id, whose, date, text (cut)."""
    text = " ".join(memory.text.split())
    if len(text) > _LINE_CHARS:
        text = text[:_LINE_CHARS] + "…"
    return f"[{memory.id}] ({_whose(memory.scope)}, {memory.created_at:%Y-%m-%d}) {text}"


def _whose(scope: Scope) -> str:
    return {"user": "yours", "conversation": "this chat", "global": "everyone"}[scope.kind]


def _listing(title: str, memories: Sequence[Memory]) -> str:
    return "\n".join([title, *(memory_line(m) for m in memories)])


def _visibility(memory: MemoryAccess, call: CommandCall) -> Visibility:
    inbound = call.inbound
    return memory.for_user(inbound.conversation.channel, inbound.sender.id, inbound.conversation)


def register_memory_commands(commands: CommandRegistry, memory: MemoryAccess) -> None:
    """Add ``/memory`` and ``/forget``."""

    async def show(call: CommandCall) -> str:
        who = _visibility(memory, call)
        query = call.args.strip()
        if query:
            hits = await memory.recall(who, query, limit=LIST_LIMIT)
            if not hits:
                return f"No memory matches “{query}”."
            return _listing(f"Memories matching “{query}”:", [h.memory for h in hits])
        memories = await memory.list(who, limit=LIST_LIMIT)
        if not memories:
            return "I have no memories of you yet. Tell me something to remember, or say “remember that …”."
        return _listing(f"Your memories (newest first, at most {LIST_LIMIT}):", memories)

    async def forget(call: CommandCall) -> str:
        who = _visibility(memory, call)
        target = call.args.strip()
        if not target:
            return FORGET_USAGE
        if target.lower() == "all":
            removed = await memory.forget_all(who)
            return f"Forgot all {removed} of your memories." if removed else "I had no memories of yours."
        if await memory.forget(who, target):
            return f"Forgot memory {target}."
        return f"No memory {target} of yours or this chat; /memory lists them."

    commands.add(
        Command(
            name="memory",
            description="List your memories, or search them",
            usage="/memory [words]",
            handler=show,
            control=True,
        )
    )
    commands.add(
        Command(
            name="forget",
            description="Forget one memory, or all of yours",
            usage="/forget <id | all>",
            handler=forget,
            control=True,
        )
    )
