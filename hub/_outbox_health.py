"""The outbox's view of each channel: can its sends get through right now?

A channel is *up* until a send fails for a passing reason the platform did not answer (network,
timeout, a 5xx): then it is *down*, and its replies wait here together instead of each sleeping
its own back-off. While it is down, one waiting reply at a time is sent as a probe, every probe
interval, longest-waiting first; the first send the platform answers (a success, a refusal, a
rate limit) brings the channel up and wakes every waiting reply at once. So recovery costs at
most one probe interval however long the outage lasted, and the platform sees one request per
interval, not one per waiting reply.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Protocol

from .backoff import Backoff
from .durations import human_duration

log = logging.getLogger("hub.outbox")


class Clock(Protocol):
    """What the outbox's waits run on; tests pass a virtual one and never sleep for real."""

    def now(self) -> float:
        """Seconds on a monotonic clock."""
        ...

    async def sleep(self, seconds: float, *, until: asyncio.Event | None = None) -> None:
        """Wait ``seconds``, or less if ``until`` is set meanwhile."""
        ...


class LoopClock:
    """The real clock: ``time.monotonic`` (the event loop's own) and asyncio's timers."""

    def now(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float, *, until: asyncio.Event | None = None) -> None:
        if until is None:
            await asyncio.sleep(seconds)
            return
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await until.wait()


@dataclass(slots=True, eq=False)
class Waiter:
    """A lane waiting for its channel: woken when the channel is up or when it may probe."""

    wake: asyncio.Event = field(default_factory=asyncio.Event)
    turn: bool = False
    """Set while this lane's next send is the channel's probe."""


class ChannelHealth:
    """One channel's sends as the outbox sees them (see the module docstring).

    Args:
        name: the channel's name (for logs and ``/healthz``).
        clock: what the probe interval is timed on.
        probe_interval: the pause between two probes while the channel is down: a back-off
            with ``factor=1``, so it does not grow with the outage (jittered).
    """

    def __init__(self, name: str, clock: Clock, probe_interval: Backoff) -> None:
        self.name = name
        self.up = True
        self.error = ""
        """Why the channel is down: the last failed send's error."""
        self.down_since = 0.0
        self.answers = 0
        """Sends the platform answered, ever: a reply whose own sends fail while this grows fails alone."""
        self._clock = clock
        self._interval = probe_interval
        self._waiting: deque[Waiter] = deque()
        self._opened = asyncio.Event()
        self._opened.set()
        self._enlisted = asyncio.Event()
        self._probe_over = asyncio.Event()
        self._prober: asyncio.Task[None] | None = None
        self._closed = False

    def answered(self) -> None:
        """The platform answered a send: the channel is up; every waiting reply goes now."""
        self.answers += 1
        if self.up:
            return
        self.up = True
        for event in (self._opened, self._enlisted, self._probe_over):
            event.set()
        waiting, self._waiting = self._waiting, deque()
        for waiter in waiting:
            waiter.wake.set()
        log.info(
            "sends to %s work again after %s; %d waiting conversation(s) go out now",
            self.name,
            human_duration(self._clock.now() - self.down_since),
            len(waiting),
        )

    def went_down(self, error: str) -> None:
        """A send failed with no answer from the platform: hold the channel's replies, start probing."""
        self.error = error
        if not self.up:
            return
        self.up = False
        self.down_since = self._clock.now()
        self._opened.clear()
        log.warning(
            "sends to %s fail (%s); its replies wait and one is retried every %.3g s until one goes through",
            self.name,
            error,
            self._interval.first,
        )
        if not self._closed and (self._prober is None or self._prober.done()):
            self._prober = asyncio.create_task(self._probe_loop(), name=f"outbox-probe-{self.name}")

    async def wait_turn(self, waiter: Waiter) -> None:
        """Wait until the channel is up, or it is ``waiter``'s turn to probe it (``waiter.turn``)."""
        waiter.wake.clear()
        self._waiting.append(waiter)
        self._enlisted.set()
        try:
            await waiter.wake.wait()
        except BaseException:  # cancelled (the hub stops): out of the line, and release the probe
            with contextlib.suppress(ValueError):
                self._waiting.remove(waiter)
            self.probe_done(waiter)
            raise

    def probe_done(self, waiter: Waiter | None) -> None:
        """``waiter``'s probe is over, whatever came of it (call after ``answered``/``went_down``)."""
        if waiter is not None and waiter.turn:
            waiter.turn = False
            self._probe_over.set()

    def problem(self) -> str | None:
        """Why sends to this channel are held, for ``/healthz``; ``None`` while it is up."""
        if self.up:
            return None
        waited = human_duration(self._clock.now() - self.down_since)
        return f"sends have failed for {waited}, replies wait: {self.error}"

    async def aclose(self) -> None:
        """Stop probing for good (the hub stops; waiting replies stay pending for the next start)."""
        self._closed = True
        if self._prober is not None:
            self._prober.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._prober
            self._prober = None

    async def _probe_loop(self) -> None:
        while not self.up:
            if not self._waiting:
                self._enlisted.clear()
                await self._enlisted.wait()
                continue
            await self._clock.sleep(self._interval.delay(1), until=self._opened)
            if self.up or not self._waiting:
                continue
            waiter = self._waiting.popleft()
            self._probe_over.clear()
            waiter.turn = True
            waiter.wake.set()
            await self._probe_over.wait()
