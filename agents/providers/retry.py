"""Our retries: exponential back-off with jitter, honouring ``retry-after``.

The SDKs' own retries are off (``max_retries=0``): stacked on ours they multiply, and they
never retry a stream that broke after its headers, nor a ``retry-after`` above 120 s (openai).
A stream that fails after it yielded text is started over too, but it yields ``Restarted``
first: only the caller knows whether the user has already seen part of that answer, and one
that has closes the stream there, before any wait or new request.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from contextlib import aclosing
from dataclasses import dataclass
from typing import TypeVar

from hub.backoff import EQUAL_JITTER, Backoff
from hub.errors import ProviderError

from .base import Restarted, StreamEvent
from .config import ProviderConfig
from .errors import RateLimited

logger = logging.getLogger(__name__)

T = TypeVar("T")


DEFAULT_BACKOFF = Backoff(first=0.5, cap=60.0, jitter=EQUAL_JITTER)
"""The provider config's defaults (``retry_initial_wait_seconds``, ``retry_max_wait_seconds``)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class RetryPolicy:
    """How many times to retry, and how long to wait before each retry."""

    max_retries: int = 3
    backoff: Backoff = DEFAULT_BACKOFF
    """The waits when the server gave no ``retry-after``."""

    @classmethod
    def from_config(cls, config: ProviderConfig) -> RetryPolicy:
        backoff = Backoff(
            first=config.retry_initial_wait_seconds, cap=config.retry_max_wait_seconds, jitter=EQUAL_JITTER
        )
        return cls(max_retries=config.max_retries, backoff=backoff)

    @property
    def max_wait(self) -> float:
        """Cap of one back-off wait, and the longest ``retry-after`` we are willing to honour."""
        return self.backoff.cap

    def delay(self, attempt: int, error: ProviderError) -> float | None:
        """Seconds to wait before retry number ``attempt + 1``, or None to give up."""
        if not error.retryable or attempt >= self.max_retries:
            return None
        if error.retry_after is not None:
            if error.retry_after > self.max_wait:
                return None
            # A little extra so we never arrive before the server's window reopens.
            wait = float(error.retry_after)
            return wait + min(0.1 * wait, 1.0) * self.backoff.random()
        return self.backoff.delay(attempt + 1)


def _give_up(error: ProviderError, policy: RetryPolicy) -> ProviderError:
    if isinstance(error, RateLimited) and error.retry_after is not None and error.retry_after > policy.max_wait:
        return RateLimited(
            f"{error} (asked to wait {error.retry_after:.0f}s, more than retry_max_wait_seconds={policy.max_wait:.0f})",
            retryable=False,
            retry_after=error.retry_after,
            status=error.status,
            provider=error.provider,
        )
    return error


async def _pause(label: str, attempt: int, policy: RetryPolicy, delay: float, error: ProviderError) -> None:
    logger.warning("%s (provider %s); retry %d/%d in %.2fs", error, label, attempt + 1, policy.max_retries, delay)
    await asyncio.sleep(delay)


async def retry_call(label: str, policy: RetryPolicy, call: Callable[[], Awaitable[T]]) -> T:
    """Await ``call()`` until it succeeds, retrying the ``ProviderError``s that allow it."""
    attempt = 0
    while True:
        try:
            return await call()
        except ProviderError as exc:
            delay = policy.delay(attempt, exc)
            if delay is None:
                raise _give_up(exc, policy) from exc
            await _pause(label, attempt, policy, delay, exc)
            attempt += 1


async def retry_stream(
    label: str, policy: RetryPolicy, open_stream: Callable[[], AsyncGenerator[StreamEvent, None]]
) -> AsyncIterator[StreamEvent]:
    """Yield from ``open_stream()``, starting it again on retryable errors; when the failed
    attempt had yielded text, yield ``Restarted`` before the wait (see the module docstring)."""
    attempt = 0
    while True:
        started = False
        try:
            async with aclosing(open_stream()) as events:
                async for event in events:
                    started = True
                    yield event
            return
        except ProviderError as exc:
            delay = policy.delay(attempt, exc)
            if delay is None:
                raise _give_up(exc, policy) from exc
            error = exc
        if started:
            yield Restarted(error=error)
        await _pause(label, attempt, policy, delay, error)
        attempt += 1
