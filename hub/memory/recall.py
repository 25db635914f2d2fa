"""Automatic recall: the few memories most relevant to a message, as a note for the user turn.

The note goes into the user's message, never the system prompt, so the system prompt stays
byte-stable and providers' prompt caches keep hitting. It holds whole memories only, best
first, within a token budget (characters / 4, the estimate ``agents.compaction`` uses too).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass

from hub.errors import AutoHandsError
from hub.memory._terms import STOP_WORDS, query_terms
from hub.memory.access import MemoryAccess, Visibility
from hub.memory.base import Hit

__all__ = [
    "RECALL_HEADER",
    "RecallNote",
    "estimate_tokens",
    "meaningful_stems",
    "recall_note",
    "recalled_ids",
    "relevant",
]

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


_WORD = re.compile(r"\w+")
_SHORTEST = 3
_LONG = 7
"""Letters of a word so long it is likely rare in memories (stems count: "penicill")."""
_SUFFIXES = ("ing", "ies", "es", "ed", "er", "ly", "s")
_LINE = re.compile(r"^- \[([0-9a-zA-Z_-]{1,64})\] ", re.MULTILINE)


def recalled_ids(texts: Iterable[str]) -> set[str]:
    """The ids of memories that notes in ``texts`` (earlier user turns) already hold."""
    found: set[str] = set()
    for text in texts:
        if RECALL_HEADER in text:
            found.update(_LINE.findall(text[text.index(RECALL_HEADER) :]))
    return found


def relevant(hit: Hit, words: Sequence[str], *, min_similarity: float) -> bool:
    """Whether automatic recall should add ``hit``: its embedding's cosine similarity to the
    message reaches ``min_similarity``, or its text shares with the message's meaningful
    ``words`` (``meaningful_stems``) two of them (one, for a message of one), a long one (a rare word:
    "penicillin") or a name (a capitalised word of the memory: "Ana"). Search ranks; this is
    the bar a ranked memory must also clear, since any message shares a common word with some
    memory and a vector search always has a nearest neighbour."""
    similarity = hit.similarity if hit.similarity is not None else (hit.score if hit.via == "vector" else None)
    if similarity is not None and similarity >= min_similarity:
        return True
    found = _WORD.findall(hit.memory.text)
    stems = {_stem(word) for word in found}
    names = {_stem(word) for word in found if word[:1].isupper() and word.lower() not in STOP_WORDS}
    shared = [word for word in words if any(_same(word, stem) for stem in stems)]
    if len(shared) >= min(2, len(words)) > 0:
        return True
    return any(len(word) >= _LONG or any(_same(word, name) for name in names) for word in shared)


def meaningful_stems(terms: Sequence[str]) -> list[str]:
    """The stems of the meaningful words of ``terms`` (three letters or more, stop words out)."""
    words = [word.lower() for term in terms for word in _WORD.findall(term)]
    return list(dict.fromkeys(_stem(w) for w in words if len(w) >= _SHORTEST and w not in STOP_WORDS))


def _stem(word: str) -> str:
    """A crude stem: a common suffix off ("lives" and "live", "baking" and "bake" meet)."""
    word = word.lower()
    for suffix in _SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= _SHORTEST:
            return word[: -len(suffix)]
    return word


def _same(a: str, b: str) -> bool:
    """Two stems of one word: equal in their first letters (up to five, at least three)."""
    n = min(len(a), len(b), 5)
    return n >= _SHORTEST and a[:n] == b[:n]


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
    min_similarity: float,
) -> RecallNote:
    """The memories ``who`` may read that best match ``query``, as many whole ones as fit in
    ``tokens``, leaving out the ids in ``already`` (recalled earlier in the same history, so
    still in the prompt) and those not ``relevant`` enough. Never raises for a memory
    failure: recall is a help, the answer matters more."""
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
    words = meaningful_stems(query_terms(query))
    for hit in hits:
        if hit.memory.id in already or not relevant(hit, words, min_similarity=min_similarity):
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
