"""The web chat's transcript: every final message of a conversation, numbered from 1, kept in
the channel's durable state, and each principal's list of conversations.

Why a transcript of its own: a channel sees the store only through ``KeyValueState``
(``hub/channel.py``), and the outbox's rows have no number a client could resume after. Every
final reply still comes from the outbox: the dispatcher marks a row sent only after
``WebChannel.send`` returned, and ``send`` returns only once the reply is kept here, so a
reply is in the transcript whether or not a socket was open (a crash in between re-sends the
row after the next start; ``append`` keeps it once). The numbers are the protocol's server
ids: monotonic per conversation and the same after a restart.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import cast

from hub.channel import KeyValueState

from ._protocol import JSON, Frame

__all__ = ["MAX_CONVERSATIONS", "ConversationInfo", "Journal"]

MAX_CONVERSATIONS = 500
"""Conversations listed per principal, most recent first (older ones are still resumable)."""
TITLE_CHARS = 80
_LOCKS = 64


@dataclass(frozen=True, slots=True)
class ConversationInfo:
    id: str
    title: str
    last_activity: str
    """ISO 8601, UTC."""
    last_id: int
    """The server id of its last kept message."""

    def as_frame(self) -> Frame:
        return {"id": self.id, "title": self.title, "last_activity": self.last_activity, "last_id": self.last_id}


class Journal:
    """Numbered frames per conversation key, in ``state`` (``n:<key>``: the last number,
    ``m:<key>:<n>``: frame ``n``; ``c:<principal>``: the conversation list)."""

    def __init__(self, state: KeyValueState) -> None:
        self._state = state
        self._last: dict[str, int] = {}
        # Striped locks: bounded memory however many conversations there are.
        self._locks = tuple(asyncio.Lock() for _ in range(_LOCKS))
        self._lists = asyncio.Lock()
        """Held while a conversation list is rewritten (never taken inside it: no deadlock)."""

    def lock(self, key: str) -> asyncio.Lock:
        """Held while a conversation's message is recorded and kept, so numbers follow order."""
        return self._locks[hash(key) % _LOCKS]

    async def last(self, key: str) -> int:
        if key not in self._last:
            self._last[key] = int(await self._state.get(f"n:{key}") or 0)
        return self._last[key]

    async def append(self, key: str, frame: Frame, *, ref: str | None = None) -> tuple[int, Frame]:
        """Keep ``frame`` as the conversation's next message (call under ``lock(key)``);
        returns its number and the frame with its ``id``. A frame whose ``ref`` is the last one
        kept is that one again (the outbox re-sends a row that was kept but not marked sent)."""
        n = await self.last(key)
        if ref is not None and n:
            kept = await self.get(key, n)
            if kept is not None and kept.get("ref") == ref:
                return n, kept
        numbered: Frame = {**frame, "id": n + 1}
        await self._state.set(f"m:{key}:{n + 1}", json.dumps(numbered, separators=(",", ":")))
        await self._state.set(f"n:{key}", str(n + 1))
        self._last[key] = n + 1
        return n + 1, numbered

    async def get(self, key: str, n: int) -> Frame | None:
        raw = await self._state.get(f"m:{key}:{n}")
        return cast(Frame, json.loads(raw)) if raw else None

    async def after(self, key: str, after: int, *, limit: int) -> list[Frame]:
        """Frames numbered after ``after``, in order, at most ``limit`` (the last ones)."""
        last = await self.last(key)
        first = max(after + 1, last - limit + 1)
        frames = [await self.get(key, n) for n in range(first, last + 1)]
        return [f for f in frames if f is not None]

    # ----------------------------------------------------------------- conversation lists
    async def conversations(self, principal: str) -> list[ConversationInfo]:
        raw = await self._state.get(f"c:{principal}")
        rows = cast(list[dict[str, JSON]], json.loads(raw)) if raw else []
        return [
            ConversationInfo(str(r["id"]), str(r["title"]), str(r["last_activity"]), int(cast(int, r["last_id"])))
            for r in rows
        ]

    async def touch(self, principal: str, conversation: str, *, at: str, last_id: int, text: str = "") -> None:
        """Note activity in a conversation; the first text a person wrote becomes its title."""
        async with self._lists:
            await self._touch(principal, conversation, at=at, last_id=last_id, text=text)

    async def _touch(self, principal: str, conversation: str, *, at: str, last_id: int, text: str) -> None:
        rows = await self.conversations(principal)
        old = next((r for r in rows if r.id == conversation), None)
        title = old.title if old and old.title else _title(text)
        rows = [ConversationInfo(conversation, title, at, last_id)] + [r for r in rows if r.id != conversation]
        body = [r.as_frame() for r in rows[:MAX_CONVERSATIONS]]
        await self._state.set(f"c:{principal}", json.dumps(body, separators=(",", ":")))


def _title(text: str) -> str:
    line = text.strip().split("\n", 1)[0]
    return line if len(line) <= TITLE_CHARS else line[: TITLE_CHARS - 1] + "…"
