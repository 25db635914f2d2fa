"""A non-durable stand-in for ``Store`` (benchmarks measure the cost of durability with it).

It keeps the same contract in memory: ids, dedupe on (channel, platform_id), statuses."""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence

from .._lifecycle import Lifecycle
from ..agent import HistoryItem, Usage
from ..messages import Inbound, Outbound
from ._rows import _with_id
from .base import SessionSnapshot, StoreAPI


class MemoryStore:
    """``StoreAPI`` in this process's memory (``Hub(settings, store=MemoryStore())``): nothing
    survives a restart."""

    def __init__(self) -> None:
        self._ids = itertools.count(1)
        self._seen: set[tuple[str, str]] = set()
        self.status: dict[int, str] = {}
        self.outbox: dict[str, str] = {}
        self.history: dict[str, list[HistoryItem]] = {}
        self.settings: dict[str, dict[str, str]] = {}
        self.state: dict[str, str] = {}
        self._life = Lifecycle("MemoryStore")

    async def start(self) -> None:
        """Nothing to open; keeps the lifecycle rule (docs/ARCHITECTURE.md, "Lifecycle")."""
        with self._life.starting():
            pass

    async def stop(self) -> None:
        self._life.stopping()

    async def __aenter__(self) -> MemoryStore:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def record_inbound(self, inbound: Inbound) -> Inbound | None:
        key = (inbound.conversation.channel, inbound.platform_id)
        if inbound.platform_id and key in self._seen:
            return None
        self._seen.add(key)
        mid = next(self._ids)
        self.status[mid] = "received"
        return _with_id(inbound, mid)  # as the SQL store does: the cost compared is durability's

    async def mark_processing(self, inbound_id: int) -> None:
        self.status[inbound_id] = "processing"

    def give_back_attempt(self, inbound_id: int) -> None:
        pass  # attempts are not counted without persistence

    async def finish_run(
        self,
        inbound: Inbound | None,
        *,
        reply: Outbound | None,
        remember: Sequence[HistoryItem] = (),
        replace_history: Sequence[HistoryItem] | None = None,
        usage: Sequence[tuple[str, str, Usage]] = (),
        status: str = "answered",
    ) -> None:
        if reply is not None:
            self.outbox[reply.id] = "pending"
        source = reply or inbound
        key = source.conversation.key if source is not None else ""
        if replace_history is not None:
            self.history[key] = list(replace_history)
        if remember:
            self.history.setdefault(key, []).extend(remember)
        if inbound is not None and inbound.id:
            self.status[inbound.id] = status

    async def pending_inbound(self) -> list[tuple[Inbound, int]]:
        return []

    async def record_outbound(self, outbound: Outbound) -> None:
        self.outbox[outbound.id] = "pending"

    async def mark_sent(self, outbound_id: str, platform_ids: Iterable[str]) -> None:
        self.outbox[outbound_id] = "sent"

    async def mark_failed(self, outbound_id: str, error: str) -> None:
        self.outbox[outbound_id] = "failed"

    async def pending_outbound(self) -> list[Outbound]:
        return []

    async def note_send_failure(self, outbound_id: str, error: str) -> None: ...

    async def take_resend_requests(self) -> list[Outbound]:
        return []  # nothing outlives the process, so no operator can ask for a resend

    async def load_session(self, key: str) -> SessionSnapshot:
        return SessionSnapshot(history=list(self.history.get(key, [])), settings=dict(self.settings.get(key, {})))

    async def clear_history(self, key: str) -> None:
        self.history.pop(key, None)

    async def set_setting(self, key: str, name: str, value: str | None) -> dict[str, str]:
        s = self.settings.setdefault(key, {})
        if value is None:
            s.pop(name, None)
        else:
            s[name] = value
        return dict(s)

    async def state_get(self, key: str) -> str | None:
        return self.state.get(key)

    async def state_set(self, key: str, value: str) -> None:
        self.state[key] = value


_: type[StoreAPI] = MemoryStore
"""Checked by mypy: ``MemoryStore`` keeps to ``StoreAPI`` (the hub uses either store). It has
no SQL (``SQLStoreAPI``), so a hub on it runs without a scheduler."""
