"""Outbound rate limiting: per-chat, per-group and per-bot token buckets, plus 429 halts.

Every send and edit an adapter makes goes through one ``RateLimiter`` per bot account::

    async with limiter.slot(chat_key, group=is_group):
        await api_call()

The buckets keep us under the platform's documented limits (docs/PLATFORMS.md T7, T8: Telegram
1 msg/s per chat with short bursts, 20/min per group, ~30/s per bot). When the platform still
answers 429 with ``retry_after``, ``halt(scope, seconds)`` holds back every later acquire in
that scope until the time has passed.

A halt is a deadline that only ever moves later, never a flag that a caller clears: in
python-telegram-bot's ``AIORateLimiter`` a concurrent request that *succeeded* could lift the
halt early (python-telegram-bot #5338); here nothing but the clock ends a halt.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass

from pydantic import BeforeValidator

from hub.errors import ChannelError

__all__ = ["Rate", "RateLimiter", "RateLimits", "RetryAfter", "levels_default_to", "scope_of"]

logger = logging.getLogger(__name__)

_GLOBAL = None
"""The scope of a whole-bot halt."""

_MAX_IDLE_BUCKETS = 2048
"""Per-chat buckets kept before idle (full, unhalted) ones are pruned."""


class RetryAfter(ChannelError):
    """A 429: the platform asked us to wait ``retry_after`` seconds.

    Adapters may raise a plain ``ChannelError(retry_after=…)``; this subclass additionally says
    whether the limit hit was the bot-wide one (Discord's ``"global": true``), so the halt covers
    every chat rather than just the one the call was for.
    """

    def __init__(
        self, message: str, *, retry_after: float, global_scope: bool = False, status: int | str = 429
    ) -> None:
        super().__init__(message, retryable=True, retry_after=retry_after, status=status)
        self.global_scope = global_scope


@dataclass(frozen=True, slots=True)
class Rate:
    """A token bucket: ``per_second`` tokens are added each second, at most ``burst`` stored."""

    per_second: float
    burst: int = 1

    def __post_init__(self) -> None:
        if self.per_second <= 0 or self.burst < 1:
            raise ValueError(f"a rate needs per_second > 0 and burst >= 1, got {self!r}")


@dataclass(frozen=True, slots=True, kw_only=True)
class RateLimits:
    """The buckets a limiter applies; ``None`` means no limit at that level."""

    per_chat: Rate | None = None
    per_group: Rate | None = None
    """Applied in addition to ``per_chat`` when the caller says the chat is a group."""
    per_bot: Rate | None = None

    @classmethod
    def telegram(cls) -> RateLimits:
        # Telegram bots FAQ; PTB FloodLimit: 1/s per chat, 20/min per group, 30/s overall.
        return cls(per_chat=Rate(1.0, 3), per_group=Rate(20 / 60, 20), per_bot=Rate(30.0, 30))

    @classmethod
    def slack(cls) -> RateLimits:
        # chat.postMessage: "1 message per second per channel", short bursts tolerated.
        return cls(per_chat=Rate(1.0, 3))

    @classmethod
    def discord(cls) -> RateLimits:
        # Channel message route: about 5 per 5 s; global: 50 requests/s per bot.
        return cls(per_chat=Rate(1.0, 5), per_bot=Rate(50.0, 50))


def levels_default_to(platform: RateLimits) -> BeforeValidator:
    """For an adapter's config field of type ``RateLimits`` (``Annotated[RateLimits, …]``): a
    table sets the levels it names, and the levels it leaves out keep ``platform``'s."""

    def fill(value: object) -> object:
        if not isinstance(value, Mapping):
            return value
        return {"per_chat": platform.per_chat, "per_group": platform.per_group, "per_bot": platform.per_bot, **value}

    return BeforeValidator(fill)


class _Bucket:
    """A reservation-style token bucket: tokens may go negative, and the debt is the wait.

    Reserving synchronously (no lock, no await between check and take) keeps concurrent
    callers in FIFO order and makes the bucket exact under concurrency.
    """

    __slots__ = ("_rate", "_stamp", "_tokens")

    def __init__(self, rate: Rate, now: float) -> None:
        self._rate = rate
        self._tokens = float(rate.burst)
        self._stamp = now

    def _refill(self, now: float) -> None:
        if now > self._stamp:
            self._tokens = min(float(self._rate.burst), self._tokens + (now - self._stamp) * self._rate.per_second)
            self._stamp = now

    def reserve(self, now: float) -> float:
        """Take one token; return how long the caller must wait before using it."""
        self._refill(now)
        self._tokens -= 1.0
        return 0.0 if self._tokens >= 0 else -self._tokens / self._rate.per_second

    def refund(self, now: float) -> None:
        self._refill(now)
        self._tokens = min(float(self._rate.burst), self._tokens + 1.0)

    def idle(self, now: float) -> bool:
        self._refill(now)
        return self._tokens >= self._rate.burst


class RateLimiter:
    """Token buckets per chat, per group and per bot, and halts after a 429.

    Args:
        limits: the buckets to apply (``RateLimits.telegram()`` etc.).
        clock: a monotonic clock in seconds; defaults to the running loop's ``time()``.
    """

    def __init__(self, limits: RateLimits | None = None, *, clock: Callable[[], float] | None = None) -> None:
        self.limits = limits or RateLimits()
        self._clock = clock
        self._chat: dict[str, _Bucket] = {}
        self._group: dict[str, _Bucket] = {}
        self._bot: _Bucket | None = None
        self._halts: dict[str | None, float] = {}
        self._prune_at = _MAX_IDLE_BUCKETS

    def _now(self) -> float:
        return self._clock() if self._clock is not None else asyncio.get_running_loop().time()

    # -- halts ---------------------------------------------------------------------------

    def halt(self, scope: str | None, seconds: float) -> None:
        """Hold back every acquire in ``scope`` (a chat key, or ``None`` for the whole bot).

        The halt ends ``seconds`` from now, or later if a longer halt is already in force.
        """
        until = self._now() + max(0.0, float(seconds))
        if until > self._halts.get(scope, float("-inf")):
            self._halts[scope] = until
            logger.info("rate limit: halting %s for %.1f s", scope or "all chats", seconds)

    def halted_for(self, scope: str | None) -> float:
        """Seconds left on the halt of ``scope`` itself (0.0 if none)."""
        return max(0.0, self._halts.get(scope, 0.0) - self._now())

    def _halt_wait(self, chat_key: str, now: float) -> float:
        until = max(self._halts.get(_GLOBAL, 0.0), self._halts.get(chat_key, 0.0))
        return until - now

    # -- acquiring -----------------------------------------------------------------------

    def _reserve(self, chat_key: str, group: bool, now: float) -> tuple[float, list[_Bucket]]:
        taken: list[_Bucket] = []
        limits = self.limits
        if limits.per_chat is not None:
            bucket = self._chat.get(chat_key)
            if bucket is None:
                self._prune(now)
                bucket = self._chat[chat_key] = _Bucket(limits.per_chat, now)
            taken.append(bucket)
        if group and limits.per_group is not None:
            bucket = self._group.get(chat_key)
            if bucket is None:
                bucket = self._group[chat_key] = _Bucket(limits.per_group, now)
            taken.append(bucket)
        if limits.per_bot is not None:
            if self._bot is None:
                self._bot = _Bucket(limits.per_bot, now)
            taken.append(self._bot)
        wait = max((b.reserve(now) for b in taken), default=0.0)
        return wait, taken

    async def acquire(self, chat_key: str, *, group: bool = False) -> None:
        """Wait until one more call to ``chat_key`` is allowed, and count it."""
        await self._sit_out_halts(chat_key)
        wait, taken = self._reserve(chat_key, group, self._now())
        try:
            if wait > 0:
                await asyncio.sleep(wait)
            # A 429 may have arrived while we waited for our token: honour it too.
            await self._sit_out_halts(chat_key)
        except asyncio.CancelledError:
            now = self._now()
            for bucket in taken:
                bucket.refund(now)
            raise

    async def _sit_out_halts(self, chat_key: str) -> None:
        # A halt is a deadline, not an event: it can only be extended (by another 429), so we
        # sleep to it and look again rather than wait for someone to signal its end.
        while (wait := self._halt_wait(chat_key, self._now())) > 0:  # noqa: ASYNC110
            await asyncio.sleep(wait)

    @asynccontextmanager
    async def slot(self, chat_key: str, *, group: bool = False) -> AsyncIterator[None]:
        """``acquire`` as a context manager; a ``ChannelError`` with ``retry_after`` raised
        inside halts the chat (or the bot, for a global ``RetryAfter``) before propagating."""
        await self.acquire(chat_key, group=group)
        try:
            yield
        except ChannelError as exc:
            if exc.retry_after is not None:
                self.halt(scope_of(exc, chat_key), exc.retry_after)
            raise

    def _prune(self, now: float) -> None:
        if len(self._chat) < self._prune_at:
            return
        for key in [k for k, b in self._chat.items() if b.idle(now) and self._halt_wait(k, now) <= 0]:
            del self._chat[key]
            self._halts.pop(key, None)
        for key in [k for k, b in self._group.items() if b.idle(now)]:
            del self._group[key]
        # Amortised: when most buckets are busy, do not rescan them on every new chat.
        self._prune_at = max(_MAX_IDLE_BUCKETS, 2 * len(self._chat))


def scope_of(exc: ChannelError, chat_key: str) -> str | None:
    """The halt scope a 429 applies to: the whole bot for a global ``RetryAfter``, else the chat."""
    return _GLOBAL if isinstance(exc, RetryAfter) and exc.global_scope else chat_key
