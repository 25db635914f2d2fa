"""``RunPool``: the one admission every agent run goes through (chat turns, API requests,
scheduled jobs' runs, background tasks).

Its workers are the hub's global run limit (``[sessions] max_concurrent_runs``). A run waits
for a slot in priority order (``hub.tasks.base``: ``INTERACTIVE`` first, then ``JOB``, then
``BACKGROUND``; first come, first served within a level). Work that no person waits for is
capped (``[tasks] max_background_runs``, by default one slot less than the limit), so a chat
message finds a slot free, or is next, however much background work is queued.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from .base import INTERACTIVE

__all__ = ["RunPool"]


@dataclass(order=True, slots=True)
class _Waiter:
    priority: int
    seq: int
    future: asyncio.Future[None] = field(compare=False)


class RunPool:
    """A priority semaphore.

    Args:
        workers: runs at once (the hub's global run limit).
        max_background: runs at once whose priority is lower than ``INTERACTIVE``; ``None``:
            ``workers - 1`` (at least 1).
    """

    def __init__(self, workers: int, max_background: int | None = None) -> None:
        if workers < 1:
            raise ValueError("a run pool needs at least one worker")
        self.workers = workers
        self.max_background = min(workers, max_background or max(1, workers - 1))
        self.running = 0
        self.background_running = 0
        self._waiting: list[_Waiter] = []
        self._seq = itertools.count()

    @property
    def queued(self) -> int:
        """Runs waiting for a slot."""
        return sum(1 for w in self._waiting if not w.future.done())

    @asynccontextmanager
    async def slot(self, priority: int = INTERACTIVE) -> AsyncIterator[None]:
        """Hold one slot for the body; waits its turn (cancellable while waiting)."""
        await self.acquire(priority)
        try:
            yield
        finally:
            self.release(priority)

    async def acquire(self, priority: int) -> None:
        if not self._waiting and self._may_run(priority):
            self._take(priority)
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._waiting, _Waiter(priority, next(self._seq), future))
        self._grant()  # a free slot that background waiters may not take may be this run's
        try:
            await future
        except asyncio.CancelledError:
            if future.done() and not future.cancelled():
                self.release(priority)  # granted as it was cancelled: hand the slot on
            raise

    def release(self, priority: int) -> None:
        self.running -= 1
        if priority > INTERACTIVE:
            self.background_running -= 1
        self._grant()

    def _may_run(self, priority: int) -> bool:
        if self.running >= self.workers:
            return False
        return priority <= INTERACTIVE or self.background_running < self.max_background

    def _take(self, priority: int) -> None:
        self.running += 1
        if priority > INTERACTIVE:
            self.background_running += 1

    def _grant(self) -> None:
        # The heap is in priority order: once its head may not run (the background cap), no
        # later waiter may either.
        while self._waiting:
            head = self._waiting[0]
            if head.future.done():  # cancelled while waiting
                heapq.heappop(self._waiting)
                continue
            if not self._may_run(head.priority):
                return
            heapq.heappop(self._waiting)
            self._take(head.priority)
            head.future.set_result(None)
