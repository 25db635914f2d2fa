"""Delivers outbounds to their channels, in order per conversation, until the platform acks.

Final outbounds are already in the outbox table (``pending``) when they reach the bus; a
successful ``channel.send`` marks them ``sent`` with the platform's ids. Transient failures
are retried with back-off honouring the platform's ``retry_after``; permanent ones are marked
``failed`` and logged once. Partial and typing outbounds are best-effort and never retried.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field

from .bus import Bus, Subscription
from .errors import ChannelError
from .messages import Outbound
from .plugins import Channel
from .store import Store

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True, kw_only=True)
class RetryPolicy:
    max_attempts: int = 8
    base_delay: float = 1.0
    max_delay: float = 60.0


@dataclass(slots=True, eq=False)
class _Lane:
    channel: str
    queue: deque[Outbound] = field(default_factory=deque)
    worker: asyncio.Task[None] | None = None


class OutboxDispatcher:
    def __init__(self, store: Store, bus: Bus, channels: Mapping[str, Channel],
                 retry: RetryPolicy = RetryPolicy()) -> None:
        self.store = store
        self.bus = bus
        self.channels = channels
        self.retry = retry
        self._lanes: dict[str, _Lane] = {}
        self._sub: Subscription[Outbound] | None = None
        self._consumer: asyncio.Task[None] | None = None
        self._stopping = False
        self._open: dict[str, asyncio.Event] = {}
        self.sent = 0
        self.failed = 0

    async def start(self) -> None:
        if self._consumer is not None:
            raise RuntimeError("OutboxDispatcher already started")
        self._sub = self.bus.subscribe("outbound")
        self._consumer = asyncio.create_task(self._consume(), name="outbox-consume")

    def open(self, channel: str | None = None) -> None:
        """Start delivering to ``channel`` (every channel if ``None``): called once it has
        started. Until then its outbounds wait here; a channel whose platform is unreachable
        at start-up must not burn their retries, or see them sent before it can send."""
        for name in self.channels if channel is None else (channel,):
            self._gate(name).set()

    def _gate(self, channel: str) -> asyncio.Event:
        gate = self._open.get(channel)
        if gate is None:
            gate = self._open[channel] = asyncio.Event()
        return gate

    def _waits_at_gate(self, lane: _Lane) -> bool:
        return lane.channel in self.channels and not self._gate(lane.channel).is_set()

    async def resume(self) -> int:
        """Queue outbounds that were recorded but never confirmed sent."""
        pending = await self.store.pending_outbound()
        for out in pending:
            self._enqueue(out)
        if pending:
            log.info("re-sending %d unconfirmed outbound message(s)", len(pending))
        return len(pending)

    async def stop(self, grace: float = 10.0) -> None:
        if self._consumer is None:
            return
        # Drain what the bus already holds, then stop; unsent rows stay `pending` for next start.
        if self._sub:
            self._sub.close()
            while True:
                try:
                    self._enqueue(self._sub.get_nowait())
                except asyncio.QueueEmpty:
                    break
        self._consumer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._consumer
        # Lanes of a channel that never started have nothing to finish: they stay `pending`.
        for lane in self._lanes.values():
            if lane.worker and self._waits_at_gate(lane):
                lane.worker.cancel()
        workers = [lane.worker for lane in self._lanes.values() if lane.worker]
        if workers:
            _done, pending = await asyncio.wait(workers, timeout=grace)
            self._stopping = True
            for t in pending:
                t.cancel()
            if pending:
                await asyncio.wait(pending)
        self._stopping = True
        self._consumer = None

    async def _consume(self) -> None:
        assert self._sub is not None
        async for out in self._sub:
            self._enqueue(out)

    def _enqueue(self, out: Outbound) -> None:
        key = out.conversation.key
        lane = self._lanes.get(key)
        if lane is None:
            lane = self._lanes[key] = _Lane(out.conversation.channel)
        lane.queue.append(out)
        if lane.worker is None:
            lane.worker = asyncio.create_task(self._drain(key, lane), name=f"outbox-{key}")

    async def _drain(self, key: str, lane: _Lane) -> None:
        try:
            if self._waits_at_gate(lane):
                await self._gate(lane.channel).wait()
            while lane.queue and not self._stopping:
                out = lane.queue[0]
                if not out.final or out.typing:
                    lane.queue.popleft()
                    # Progress is best-effort; skip stale partials when more are already queued.
                    if lane.queue and not lane.queue[0].final and lane.queue[0].stream == out.stream:
                        continue
                    await self._send_best_effort(out)
                    continue
                await self._deliver(out)
                lane.queue.popleft()
        finally:
            lane.worker = None
            if not lane.queue:
                self._lanes.pop(key, None)

    async def _send_best_effort(self, out: Outbound) -> None:
        channel = self.channels.get(out.conversation.channel)
        if channel is None:
            return
        try:
            await channel.send(out)
        except ChannelError as exc:
            log.debug("progress update to %s dropped: %s", out.conversation.key, exc)
        except Exception:  # a broken adapter must not stop delivery of finals
            log.exception("channel %s failed a progress update", out.conversation.channel)

    async def _deliver(self, out: Outbound) -> None:
        channel = self.channels.get(out.conversation.channel)
        if channel is None:
            log.warning("no running channel %r for outbound %s; it stays pending",
                        out.conversation.channel, out.id)
            return
        attempt = 0
        while True:
            attempt += 1
            try:
                delivery = await channel.send(out)
            except ChannelError as exc:
                if not exc.transient or attempt >= self.retry.max_attempts:
                    self.failed += 1
                    log.error("giving up on outbound %s to %s after %d attempt(s): %s",
                              out.id, out.conversation.key, attempt, exc)
                    await self.store.mark_failed(out.id, str(exc))  # type: ignore[misc]
                    return
                delay = exc.retry_after if exc.retry_after is not None else min(
                    self.retry.max_delay, self.retry.base_delay * 2 ** (attempt - 1))
                delay *= 1 + random.random() * 0.1
                log.info("outbound %s: %s; retrying in %.1fs", out.id, exc, delay)
                await asyncio.sleep(delay)
                continue
            except Exception as exc:  # an adapter bug: record it, don't loop forever
                self.failed += 1
                log.exception("channel %s crashed sending outbound %s", out.conversation.channel, out.id)
                await self.store.mark_failed(out.id, f"{exc.__class__.__name__}: {exc}")  # type: ignore[misc]
                return
            self.sent += 1
            try:
                await self.store.mark_sent(out.id, delivery.platform_ids)  # type: ignore[misc]
            except Exception:  # delivered: a failed mark only means a possible re-send later
                log.exception("outbound %s was sent but could not be marked sent", out.id)
            return
