"""RateLimiter: buckets per chat / group / bot, and 429 halts that only the clock lifts."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import pytest

from channels.ratelimit import Rate, RateLimiter, RateLimits, RetryAfter
from channels.telegram import TelegramConfig
from hub.config import validate_section
from hub.errors import ChannelError, ConfigError

# Small real intervals: tens of milliseconds, checked with generous upper bounds for a busy CI box.
SLACK = 0.2


def now() -> float:
    return asyncio.get_running_loop().time()


async def timed(coro: object) -> float:
    start = now()
    await coro  # type: ignore[misc]
    return now() - start


async def test_burst_then_steady_rate_per_chat() -> None:
    limiter = RateLimiter(RateLimits(per_chat=Rate(20.0, burst=2)))
    start = now()
    stamps = []
    for _ in range(5):
        await limiter.acquire("c1")
        stamps.append(now() - start)
    assert stamps[1] < 0.02  # the burst is free
    assert stamps[2] >= 0.045  # then one per 50 ms
    assert stamps[4] >= 0.145
    assert stamps[4] < 0.15 + SLACK
    # Another chat has its own bucket.
    assert await timed(limiter.acquire("c2")) < 0.02


async def test_concurrent_callers_are_spaced_not_stampeded() -> None:
    limiter = RateLimiter(RateLimits(per_chat=Rate(50.0, burst=1)))
    start = now()
    done: list[float] = []

    async def one() -> None:
        await limiter.acquire("c")
        done.append(now() - start)

    async with asyncio.TaskGroup() as tg:
        for _ in range(5):
            tg.create_task(one())
    done.sort()
    # The k-th caller through is held until k intervals of 20 ms have passed. Bounds on the
    # cumulative times, not on the gaps between callers: a caller resumed late by a busy CI
    # box shrinks the gap after it (one run saw 14 ms) though the limiter spaced them right.
    assert all(t >= k * 0.02 - 0.001 for k, t in enumerate(done)), done


async def test_group_bucket_only_for_groups_and_bot_bucket_across_chats() -> None:
    limiter = RateLimiter(RateLimits(per_group=Rate(20.0, 1), per_bot=Rate(20.0, 2)))
    await limiter.acquire("g", group=True)
    assert await timed(limiter.acquire("g", group=True)) >= 0.04
    limiter = RateLimiter(RateLimits(per_group=Rate(20.0, 1)))
    await limiter.acquire("p")
    assert await timed(limiter.acquire("p")) < 0.02  # not a group: no group bucket
    limiter = RateLimiter(RateLimits(per_bot=Rate(20.0, 2)))
    await limiter.acquire("a")
    await limiter.acquire("b")
    assert await timed(limiter.acquire("c")) >= 0.04  # the bot-wide bucket is shared


async def test_halt_delays_only_its_scope() -> None:
    limiter = RateLimiter(RateLimits())
    limiter.halt("c1", 0.15)
    assert limiter.halted_for("c1") > 0.1
    assert await timed(limiter.acquire("c2")) < 0.02
    assert 0.14 <= await timed(limiter.acquire("c1")) < 0.15 + SLACK
    assert limiter.halted_for("c1") == 0.0


async def test_global_halt_delays_every_chat() -> None:
    limiter = RateLimiter()
    limiter.halt(None, 0.1)
    results = await asyncio.gather(timed(limiter.acquire("a")), timed(limiter.acquire("b")))
    assert all(r >= 0.09 for r in results)


async def test_concurrent_success_does_not_lift_a_halt() -> None:
    """python-telegram-bot #5338: a request finishing fine must not end another's 429 wait."""
    limiter = RateLimiter(RateLimits(per_chat=Rate(100.0, 5)))
    entered = asyncio.Event()

    async def in_flight_success() -> None:
        async with limiter.slot("c"):
            entered.set()
            await asyncio.sleep(0.03)  # the 429 for another call lands while this one runs

    task = asyncio.create_task(in_flight_success())
    await entered.wait()
    limiter.halt("c", 0.2)
    await task  # succeeds while the halt is in force
    # A shorter halt reported later does not shorten the longer one either.
    limiter.halt("c", 0.01)
    assert await timed(limiter.acquire("c")) >= 0.15


async def test_halt_that_lands_while_waiting_for_a_token_is_honoured() -> None:
    limiter = RateLimiter(RateLimits(per_chat=Rate(20.0, 1)))
    await limiter.acquire("c")  # next token in 50 ms
    waiter = asyncio.create_task(timed(limiter.acquire("c")))
    await asyncio.sleep(0.01)
    limiter.halt("c", 0.15)
    assert await waiter >= 0.14


async def test_slot_halts_on_retry_after() -> None:
    limiter = RateLimiter()
    with pytest.raises(ChannelError):
        async with limiter.slot("c"):
            raise ChannelError("429", retry_after=0.1, status=429)
    assert limiter.halted_for("c") > 0.05 and limiter.halted_for(None) == 0.0
    with pytest.raises(RetryAfter):
        async with limiter.slot("c"):
            raise RetryAfter("global 429", retry_after=0.1, global_scope=True)
    assert limiter.halted_for(None) > 0.05
    with pytest.raises(ChannelError):
        async with limiter.slot("d"):
            raise ChannelError("500")
    assert limiter.halted_for("d") == 0.0


async def test_cancelled_acquire_gives_its_token_back() -> None:
    limiter = RateLimiter(RateLimits(per_chat=Rate(10.0, 1)))
    await limiter.acquire("c")
    waiter = asyncio.create_task(limiter.acquire("c"))
    await asyncio.sleep(0.01)
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    # Had the cancelled reservation been kept, this would wait ~200 ms instead of ~100.
    assert await timed(limiter.acquire("c")) < 0.1 + SLACK / 2


def test_rates_validate() -> None:
    with pytest.raises(ValueError, match="per_second"):
        Rate(0)
    with pytest.raises(ValueError, match="burst"):
        Rate(1.0, 0)
    assert RateLimits.telegram().per_group == Rate(20 / 60, 20)
    assert RateLimits.slack().per_bot is None
    assert RateLimits.discord().per_chat == Rate(1.0, 5)


def test_an_adapters_rate_limits_default_to_the_platforms_and_a_table_changes_only_what_it_names() -> None:
    token = {"token": "1:abc"}
    assert TelegramConfig.model_validate(token).rate_limits == RateLimits.telegram()
    config = TelegramConfig.model_validate({**token, "rate_limits": {"per_chat": {"per_second": 2, "burst": 4}}})
    assert config.rate_limits == replace(RateLimits.telegram(), per_chat=Rate(2.0, 4))
    with pytest.raises(ConfigError, match=r"channels\.telegram\.rate_limits\.per_chat: .*per_second > 0"):
        validate_section(TelegramConfig, {**token, "rate_limits": {"per_chat": {"per_second": 0}}}, "channels.telegram")


async def test_injected_clock_and_pruning() -> None:
    t = [0.0]
    limiter = RateLimiter(RateLimits(per_chat=Rate(1.0, 1)), clock=lambda: t[0])
    for i in range(2100):
        await limiter.acquire(f"chat{i}")
    t[0] += 10  # those buckets refilled: idle ones are pruned rather than kept forever
    for i in range(2100, 4300):
        await limiter.acquire(f"chat{i}")
    assert len(limiter._chat) < 3000
