"""Delivers outbounds to their channels, in order per conversation, until the platform acks.

Final outbounds are already in the outbox table (``pending``) when they reach the bus; a
successful ``channel.send`` marks them ``sent`` with the platform's ids. Partial and typing
outbounds are best-effort and never retried. A final that fails is handled by what the failure
says (``ChannelError.retryable`` / ``retry_after``):

* a refusal (not ``retryable``) marks it ``failed`` at once: the same send would fail again;
* a rate limit (``retry_after``) is waited out by that conversation alone;
* anything else retryable (network, timeout, a 5xx) means the channel is down: its replies wait
  behind one health gate (``ChannelHealth``) that probes it and releases them all at once;
* a reply that keeps failing while its channel delivers others backs off on its own
  (``[outbox] first_delay_seconds`` doubling to ``max_delay_seconds``).

The retries never give up before the reply has failed for ``[outbox] give_up_after_seconds``
(hours): only then is it marked ``failed``, its error saying so, for ``autohands outbox retry``.
Each conversation is one lane, so a later reply never overtakes an earlier one. A reply still
``pending`` when the hub stops, retries under way included, is sent after the next start.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ._lifecycle import STOP_GRACE_SECONDS, Lifecycle
from ._outbox_health import ChannelHealth, Clock, LoopClock, Waiter
from .backoff import TENTH_LONGER, Backoff
from .bus import Bus, Subscription
from .channel import Channel
from .config import OutboxSection
from .durations import human_duration
from .errors import ChannelError, StoreError
from .messages import Outbound

if TYPE_CHECKING:
    from .store import StoreAPI

__all__ = ["Clock", "LoopClock", "OutboxDispatcher"]

log = logging.getLogger(__name__)


@dataclass(slots=True, eq=False)
class _Lane:
    channel: str
    queue: deque[tuple[Outbound, float]] = field(default_factory=deque)
    """Outbounds of one conversation, in order, each with the time it came if its channel was down
    then (0 otherwise: its deadline counts from the outage)."""
    worker: asyncio.Task[None] | None = None
    waiter: Waiter | None = None
    waiting: bool = False
    """True while the worker waits (health gate, a pause) rather than sends: stop cancels it."""


@dataclass(slots=True)
class _Retry:
    """One reply's failed sends so far."""

    arrived: float
    """When it came, if its channel was down then (0 otherwise)."""
    since: float | None = None
    """When it first could not be sent: its deadline counts from here."""
    failures: int = 0
    alone: int = 0
    """Failures while its channel delivered other replies (its own back-off steps)."""
    answers_seen: int = -1


class _Closing(Exception):
    """The dispatcher stops: a lane about to wait leaves its reply pending instead."""


class OutboxDispatcher:
    """Consumes the bus topic ``outbound`` and delivers each outbound (see the module docstring).

    Args:
        store: where outbox rows are marked.
        bus: publishes the outbounds.
        channels: the hub's channels by name.
        config: the ``[outbox]`` section (deadline, probe interval, back-off, resend checks);
            its defaults if ``None``.
        clock: what the retries' waits and deadlines run on (a virtual clock in tests).
    """

    def __init__(
        self,
        store: StoreAPI,
        bus: Bus,
        channels: Mapping[str, Channel],
        config: OutboxSection | None = None,
        *,
        clock: Clock | None = None,
    ) -> None:
        self.store = store
        self.bus = bus
        self.channels = channels
        self.config = config = config or OutboxSection()
        self.clock: Clock = clock or LoopClock()
        self._backoff = Backoff(first=config.first_delay_seconds, cap=config.max_delay_seconds, jitter=TENTH_LONGER)
        probe = config.probe_interval_seconds
        self._probe = Backoff(first=probe, cap=probe, factor=1.0, jitter=TENTH_LONGER)
        self._lanes: dict[str, _Lane] = {}
        self._health: dict[str, ChannelHealth] = {}
        self._sub: Subscription[Outbound] | None = None
        self._consumer: asyncio.Task[None] | None = None
        self._resender: asyncio.Task[None] | None = None
        self._closing = False
        self._stopping = False
        self._open: dict[str, asyncio.Event] = {}
        self._life = Lifecycle("OutboxDispatcher")
        self.sent = 0
        """Replies the platforms acknowledged (only tests read the counters)."""
        self.failed = 0
        """Replies marked failed."""

    async def start(self) -> None:
        """Take outbounds from the bus. Raises ``RuntimeError`` if started before (one life)."""
        with self._life.starting():
            self._sub = self.bus.subscribe("outbound")
            self._consumer = asyncio.create_task(self._consume(), name="outbox-consume")
            self._resender = asyncio.create_task(self._take_resends(), name="outbox-resend")

    async def __aenter__(self) -> OutboxDispatcher:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

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

    def _health_of(self, channel: str) -> ChannelHealth:
        health = self._health.get(channel)
        if health is None:
            health = self._health[channel] = ChannelHealth(channel, self.clock, self._probe)
        return health

    def queued(self) -> int:
        """Outbounds held in memory, waiting for their turn or their channel (``/metrics``)."""
        return sum(len(lane.queue) for lane in self._lanes.values())

    def problems(self) -> dict[str, str]:
        """Channels whose sends are failing now, with why (for ``/healthz``)."""
        return {name: problem for name, health in self._health.items() if (problem := health.problem())}

    async def resume(self) -> int:
        """Queue outbounds that were recorded but never confirmed sent."""
        pending = await self.store.pending_outbound()
        # Resend requests made before now name rows that are pending, so among those above
        # unless set back after that read. Later requests name rows failed at the time,
        # which no lane holds: nothing is ever queued twice.
        known = {out.id for out in pending}
        pending += [out for out in await self.store.take_resend_requests() if out.id not in known]
        for out in pending:
            self._enqueue(out)
        if pending:
            log.info("re-sending %d unconfirmed outbound message(s)", len(pending))
        return len(pending)

    async def stop(self, grace: float = STOP_GRACE_SECONDS) -> None:
        """Stop taking outbounds, give sends in flight ``grace`` seconds; the rest stay ``pending``
        for the next start. Does nothing unless running."""
        if not self._life.stopping():
            return
        self._closing = True
        # Drain what the bus already holds, then stop; unsent rows stay `pending` for next start.
        if self._sub:
            self._sub.close()
            while True:
                try:
                    self._enqueue(self._sub.get_nowait())
                except asyncio.QueueEmpty:
                    break
        for task in (self._consumer, self._resender):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        # Lanes that wait (a channel not started or down, a pause) have nothing to finish: they stay `pending`.
        for lane in self._lanes.values():
            if lane.worker and (lane.waiting or self._waits_at_gate(lane)):
                lane.worker.cancel()
        for health in self._health.values():
            await health.aclose()
        await self._finish_sends(grace)

    async def _finish_sends(self, grace: float) -> None:
        workers = [lane.worker for lane in self._lanes.values() if lane.worker]
        if workers:
            _done, pending = await asyncio.wait(workers, timeout=grace)
            self._stopping = True
            for t in pending:
                t.cancel()
            if pending:
                await asyncio.wait(pending)
        self._stopping = True

    async def _consume(self) -> None:
        assert self._sub is not None
        async for out in self._sub:
            self._enqueue(out)

    async def _take_resends(self) -> None:
        """Send the failed replies an operator set back to pending (``autohands outbox retry``)."""
        while True:  # on real time: the injected clock is for the retries, and tests set the interval
            await asyncio.sleep(self.config.resend_check_seconds)
            try:
                resends = await self.store.take_resend_requests()
            except StoreError as exc:
                log.warning("could not read the outbox's resend requests: %s; trying again later", exc)
                continue
            for out in resends:
                self._enqueue(out)
            if resends:
                log.info("re-sending %d failed repl(ies) on an operator's request", len(resends))

    def _enqueue(self, out: Outbound) -> None:
        key = out.conversation.key
        lane = self._lanes.get(key)
        if lane is None:
            lane = self._lanes[key] = _Lane(out.conversation.channel)
        # Its deadline counts from the outage if it came before, from now if it comes during one.
        health = self._health.get(lane.channel)
        lane.queue.append((out, self.clock.now() if health is not None and not health.up else 0.0))
        if lane.worker is None:
            lane.worker = asyncio.create_task(self._drain(key, lane), name=f"outbox-{key}")

    async def _drain(self, key: str, lane: _Lane) -> None:
        try:
            if self._waits_at_gate(lane):
                await self._gate(lane.channel).wait()
            while lane.queue and not self._stopping:
                out, arrived = lane.queue[0]
                if not out.final or out.typing:
                    lane.queue.popleft()
                    if not self._stale(out, lane):
                        await self._send_best_effort(out)
                    continue
                await self._deliver(lane, out, arrived)
                lane.queue.popleft()
        except _Closing:
            pass
        finally:
            lane.worker = None
            if not lane.queue:
                self._lanes.pop(key, None)

    def _stale(self, out: Outbound, lane: _Lane) -> bool:
        """Progress is best-effort: skip it when a newer partial is queued or its channel is down."""
        if lane.queue and not lane.queue[0][0].final and lane.queue[0][0].stream == out.stream:
            return True
        health = self._health.get(out.conversation.channel)
        return health is not None and not health.up

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

    async def _deliver(self, lane: _Lane, out: Outbound, arrived: float) -> None:
        name = out.conversation.channel
        channel = self.channels.get(name)
        if channel is None:
            log.warning("no running channel %r for outbound %s; it stays pending", name, out.id)
            return
        health = self._health.get(name) or self._health_of(name)
        if not health.up:
            await self._retry(lane, out, _Retry(arrived), health, channel)
            return
        # The usual case, one send, inline: a coroutine call per message shows in bench/core.py.
        try:
            delivery = await channel.send(out)
        except Exception as exc:
            failure = await self._failed(out, health, exc)
            if failure is not None:
                await self._retry(lane, out, _Retry(arrived), health, channel, failure)
            return
        health.answered()
        self.sent += 1
        try:
            await self.store.mark_sent(out.id, delivery.platform_ids)
        except Exception:  # delivered: a failed mark only means a possible re-send later
            log.exception("outbound %s was sent but could not be marked sent", out.id)

    async def _retry(
        self,
        lane: _Lane,
        out: Outbound,
        retry: _Retry,
        health: ChannelHealth,
        channel: Channel,
        failure: ChannelError | None = None,
    ) -> None:
        """Try again until the reply is sent, refused, or past its deadline (the module docstring)."""
        while True:
            if failure is not None:
                try:
                    pause = await self._after_failure(out, health, retry, failure)
                finally:
                    health.probe_done(lane.waiter)
                if pause is None:
                    return
                if pause > 0:
                    await self._pause(lane, pause)
            if not health.up:
                if retry.since is None:  # it arrived before the outage or during it
                    retry.since = max(retry.arrived, health.down_since)
                await self._wait_turn(lane, health)
            try:
                failure = await self._send(channel, out, health)
            except BaseException:  # cancelled mid-send: the probe is over
                health.probe_done(lane.waiter)
                raise
            if failure is None:
                health.probe_done(lane.waiter)
                return

    async def _send(self, channel: Channel, out: Outbound, health: ChannelHealth) -> ChannelError | None:
        """One send. Returns the retryable error to retry after, ``None`` once the row is settled."""
        try:
            delivery = await channel.send(out)
        except Exception as exc:
            return await self._failed(out, health, exc)
        health.answered()
        self.sent += 1
        try:
            await self.store.mark_sent(out.id, delivery.platform_ids)
        except Exception:  # delivered: a failed mark only means a possible re-send later
            log.exception("outbound %s was sent but could not be marked sent", out.id)
        return None

    async def _failed(self, out: Outbound, health: ChannelHealth, exc: Exception) -> ChannelError | None:
        """A send raised: the retryable error to retry after, or ``None`` once the row is marked failed."""
        if isinstance(exc, ChannelError):
            if exc.retryable:
                return exc
            health.answered()
            await self._give_up(out, f"refused by the platform: {exc}")
            return None
        # An adapter bug: record it, don't loop forever.
        log.error("channel %s crashed sending outbound %s", out.conversation.channel, out.id, exc_info=exc)
        await self._give_up(out, f"the channel crashed: {exc.__class__.__name__}: {exc}")
        return None

    async def _after_failure(
        self, out: Outbound, health: ChannelHealth, retry: _Retry, exc: ChannelError
    ) -> float | None:
        """What a transient failure means: the pause before the next try, ``None`` if given up."""
        now = self.clock.now()
        retry.failures += 1
        if retry.since is None:
            retry.since = now
        if now - retry.since >= self.config.give_up_after_seconds:
            await self._give_up(
                out,
                f"gave up after {human_duration(now - retry.since)} of failed sends "
                f"({retry.failures} attempt(s)); last error: {exc}",
            )
            return None
        pause = 0.0
        if exc.retry_after is not None:  # a rate limit: the platform answered, this reply waits as asked
            health.answered()
            pause = self._backoff.jittered(exc.retry_after)
        elif retry.failures > 1 and health.answers > retry.answers_seen:  # others got through meanwhile
            retry.alone += 1
            pause = self._backoff.delay(retry.alone)
        else:
            health.went_down(str(exc))
        retry.answers_seen = health.answers
        log.debug("outbound %s to %s failed (attempt %d): %s", out.id, out.conversation.key, retry.failures, exc)
        try:
            await self.store.note_send_failure(out.id, str(exc))
        except StoreError as store_exc:  # only the listing's attempt count is behind
            log.warning("could not note a failed send of outbound %s: %s", out.id, store_exc)
        return pause

    async def _give_up(self, out: Outbound, error: str) -> None:
        self.failed += 1
        log.error("outbound %s to %s failed: %s", out.id, out.conversation.key, error)
        await self.store.mark_failed(out.id, error)

    async def _wait_turn(self, lane: _Lane, health: ChannelHealth) -> None:
        if self._closing:
            raise _Closing
        if lane.waiter is None:
            lane.waiter = Waiter()
        lane.waiting = True
        try:
            await health.wait_turn(lane.waiter)
        finally:
            lane.waiting = False

    async def _pause(self, lane: _Lane, seconds: float) -> None:
        if self._closing:
            raise _Closing
        lane.waiting = True
        try:
            await self.clock.sleep(seconds)
        finally:
            lane.waiting = False
