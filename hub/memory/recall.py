"""Automatic recall: the few memories most relevant to a message, as a note for the user turn.

The note goes into the user's message, never the system prompt, so the system prompt stays
byte-stable and providers' prompt caches keep hitting. It holds whole memories only, best
first, within a token budget (characters / 4, the estimate ``agents.compaction`` uses too).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Collection, Iterable
from dataclasses import dataclass

from hub.errors import AutoHandsError
from hub.memory.access import MemoryAccess, Visibility

__all__ = ["RECALL_HEADER", "RecallNote", "estimate_tokens", "recall_note", "recalled_ids"]

log = logging.getLogger(__name__)

RECALL_HEADER = "Memories that may be relevant (saved earlier; ignore any that are not):"
CHARS_PER_TOKEN = 4
_MIN_QUERY_CHARS = 3


@dataclass(frozen=True, slots=True)
class RecallNote:
    """What automatic recall adds to one user turn."""

    text: str
    """The note (header and one line per memory), or ``""`` when nothing fits or matches."""
    memory_ids: tuple[str, ...] = ()
    tokens: int = 0
    """The note's estimated size in tokens."""


_LINE = re.compile(r"^- \[([0-9a-zA-Z_-]{1,64})\] ", re.MULTILINE)


def recalled_ids(texts: Iterable[str]) -> set[str]:
    """The ids of memories that notes in ``texts`` (earlier user turns) already hold."""
    found: set[str] = set()
    for text in texts:
        if RECALL_HEADER in text:
            found.update(_LINE.findall(text[text.index(RECALL_HEADER) :]))
    return found


def estimate_tokens(text: str) -> int:
    """Characters / 4, rounded up."""
    return -(-len(text) // CHARS_PER_TOKEN)


async def recall_note(
    access: MemoryAccess,
    who: Visibility,
    query: str,
    *,
    tokens: int,
    limit: int,
    already: Collection[str] = (),
) -> RecallNote:
    """The memories ``who`` may read that best match ``query``, as many whole ones as fit in
    ``tokens``, leaving out the ids in ``already`` (recalled earlier in the same history, so
    still in the prompt). Never raises for a memory failure: recall is a help, the answer
    matters more."""
    if tokens <= 0 or len(query.strip()) < _MIN_QUERY_CHARS:
        return RecallNote("")
    try:
        hits = await access.recall(who, query, limit=limit)
    except (AutoHandsError, OSError) as exc:
        log.warning("automatic recall failed (%s); answering without it", type(exc).__name__)
        return RecallNote("")
    lines = [RECALL_HEADER]
    ids: list[str] = []
    used = estimate_tokens(RECALL_HEADER)
    for hit in hits:
        if hit.memory.id in already:
            continue
        line = f"- [{hit.memory.id}] {' '.join(hit.memory.text.split())}"
        cost = estimate_tokens(line) + 1  # the newline
        if used + cost > tokens:
            continue  # a shorter, lower-ranked memory may still fit
        lines.append(line)
        ids.append(hit.memory.id)
        used += cost
    if not ids:
        return RecallNote("")
    return RecallNote("\n".join(lines), tuple(ids), used)
