"""``Backoff``: how long to pause after a number of failures, the one spelling of it in the house.

Each use holds its own numbers::

    CHANNEL_START = Backoff(first=1.0, cap=60.0, jitter=TENTH_LONGER)
    await asyncio.sleep(CHANNEL_START.delay(failures, at_least=error.retry_after or 0.0))

The jitter is drawn from ``random`` (the module's shared generator unless a caller passes its
own), so a test can make every pause exact; and since the numbers live in a value, a test gives
the part a back-off of milliseconds instead of sleeping through the real one.
"""

from __future__ import annotations

import random as _random
from collections.abc import Callable
from dataclasses import dataclass, field

__all__ = ["EQUAL_JITTER", "NO_JITTER", "TENTH_LONGER", "Backoff", "Jitter"]

Jitter = tuple[float, float]
"""The range a pause is multiplied by, drawn uniformly: ``(1.0, 1.0)`` is no jitter."""

NO_JITTER: Jitter = (1.0, 1.0)
TENTH_LONGER: Jitter = (1.0, 1.1)
"""Each pause up to a tenth longer, never shorter: parts that failed together do not retry in step."""
EQUAL_JITTER: Jitter = (0.5, 1.0)
"""Each pause between half and all of its step ("equal jitter"): spreads retries of many clients."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Backoff:
    """Pauses that grow by ``factor`` from ``first`` up to ``cap``, each stretched by ``jitter``.

    A fixed interval is a back-off with ``factor=1``.
    """

    first: float
    """The pause after the first failure (before jitter), in seconds."""
    cap: float
    """The longest step (before jitter)."""
    factor: float = 2.0
    jitter: Jitter = NO_JITTER
    random: Callable[[], float] = field(default=_random.random, repr=False, compare=False)
    """Draws the jitter, uniform in [0, 1): pass ``random.Random(seed).random`` or a constant in tests."""

    def __post_init__(self) -> None:
        low, high = self.jitter
        if min(self.first, self.cap) < 0 or self.factor < 1 or not 0 <= low <= high:
            raise ValueError(f"a back-off needs first, cap >= 0, factor >= 1 and a jitter 0 <= low <= high: {self!r}")

    def step(self, failures: int) -> float:
        """The pause after ``failures`` failures (1 or more), before jitter."""
        return min(self.cap, self.first * self.factor ** min(max(failures, 1) - 1, 64))

    def delay(self, failures: int, *, at_least: float = 0.0) -> float:
        """The pause after ``failures`` failures, jittered; never below ``at_least`` (a platform's
        ``retry_after``), which is stretched by the same jitter when it is the longer."""
        return self.jittered(max(self.step(failures), at_least))

    def jittered(self, seconds: float) -> float:
        """``seconds`` stretched by this back-off's jitter."""
        low, high = self.jitter
        if low == high:
            return seconds * low
        return seconds * (low + (high - low) * self.random())
