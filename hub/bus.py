"""Broadcast pub/sub on asyncio.

Every subscriber of a topic gets every item, through its own bounded queue. On the work
topics (``inbound``, ``outbound``) a full queue makes ``publish`` wait (back-pressure, nothing
is dropped); on observer topics a full queue drops the item and counts it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, Generic, TypeVar

T = TypeVar("T")

LOSSLESS_TOPICS = frozenset({"inbound", "outbound"})


class Subscription(Generic[T]):
    """An async iterator over one topic; ``close()`` (or leaving ``async with``) unsubscribes."""

    def __init__(self, bus: Bus, topic: str, maxsize: int, filter: Callable[[T], bool] | None) -> None:
        self._bus = bus
        self.topic = topic
        self.filter = filter
        self.queue: asyncio.Queue[T] = asyncio.Queue(maxsize)
        self.dropped = 0
        self.closed = False

    def __aiter__(self) -> Subscription[T]:
        return self

    async def __anext__(self) -> T:
        if self.closed and self.queue.empty():
            raise StopAsyncIteration
        try:
            return await self.queue.get()
        except asyncio.CancelledError:
            self.close()
            raise

    def get_nowait(self) -> T:
        return self.queue.get_nowait()

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._bus._remove(self)

    async def __aenter__(self) -> Subscription[T]:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()


class Bus:
    def __init__(self, *, queue_size: int = 4096) -> None:
        self._queue_size = queue_size
        self._subs: dict[str, list[Subscription[Any]]] = {}
        self.published: dict[str, int] = {}

    def subscribe(
        self, topic: str, *, filter: Callable[[Any], bool] | None = None, maxsize: int | None = None
    ) -> Subscription[Any]:
        """Register now (so nothing published after this call is missed) and return the iterator."""
        sub: Subscription[Any] = Subscription(self, topic, maxsize or self._queue_size, filter)
        self._subs.setdefault(topic, []).append(sub)
        return sub

    def _remove(self, sub: Subscription[Any]) -> None:
        subs = self._subs.get(sub.topic)
        if subs and sub in subs:
            subs.remove(sub)

    async def publish(self, topic: str, item: Any) -> None:
        self.published[topic] = self.published.get(topic, 0) + 1
        lossless = topic in LOSSLESS_TOPICS
        for sub in tuple(self._subs.get(topic, ())):
            if sub.filter is not None and not sub.filter(item):
                continue
            try:
                sub.queue.put_nowait(item)
            except asyncio.QueueFull:
                if lossless:
                    await sub.queue.put(item)
                else:
                    sub.dropped += 1

    def subscribers(self, topic: str) -> int:
        return len(self._subs.get(topic, ()))
