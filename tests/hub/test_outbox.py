"""Replies are never dropped by an outage: the outbox retries until a deadline of hours, holds a
down channel's replies behind one health gate that probes it, and releases them all as soon as a
probe goes through.

Time is the outbox's injected clock: ``VirtualClock`` jumps ahead by each sleep at once (only the
probe loop sleeps during an outage, so a 20-minute outage runs in well under a second), and
``SteppedClock`` holds each sleep until the test ends it. The Telegram test runs the real SDK
against the fake Bot API with the delays scaled down through ``[outbox]``.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import re
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from hub.app import Hub
from hub.backoff import TENTH_LONGER, Backoff
from hub.bus import Bus
from hub.channel import Capabilities, Inbox
from hub.config import OutboxSection, load_settings
from hub.errors import ChannelError
from hub.messages import ConversationRef, Delivery, Outbound
from hub.outbox import OutboxDispatcher
from hub.store import Store, outbox as store_outbox
from hub.store.outbox import OutboxEntry
from tests.channels.support import TELEGRAM_TIMINGS
from tests.fakes.telegram import FakeTelegram
from tests.hub.conftest import RecordingChannel

OLD_ATTEMPTS = 8
OLD_GIVE_UP = sum(2**i for i in range(OLD_ATTEMPTS - 1))  # the old RetryPolicy: 8 attempts, 1 s doubling: 127 s
PROBE = 5.0
JITTER = TENTH_LONGER[1] - 1
"""The outbox stretches each pause by up to this fraction."""


# ---------------------------------------------------------------------- clocks
class VirtualClock:
    """The outbox's clock, with no real waiting: a sleep moves the time ahead at once."""

    def __init__(self) -> None:
        self.t = 0.0

    def now(self) -> float:
        return self.t

    async def sleep(self, seconds: float, *, until: asyncio.Event | None = None) -> None:
        if until is None or not until.is_set():
            self.t += seconds
        await asyncio.sleep(0)


@dataclass(eq=False)
class Asked:
    seconds: float
    done: asyncio.Event = field(default_factory=asyncio.Event)
    over: bool = False

    def end(self) -> None:
        self.done.set()


class SteppedClock(VirtualClock):
    """Each sleep lasts until the test ends it (``next_sleep().end()``); the time then moves ahead."""

    def __init__(self) -> None:
        super().__init__()
        self.asked: asyncio.Queue[Asked] = asyncio.Queue()

    async def sleep(self, seconds: float, *, until: asyncio.Event | None = None) -> None:
        ask = Asked(seconds)
        self.asked.put_nowait(ask)
        waits = {asyncio.ensure_future(ask.done.wait())}
        if until is not None:
            waits.add(asyncio.ensure_future(until.wait()))
        try:
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            ask.over = True
            for w in waits:
                w.cancel()
        if ask.done.is_set():
            self.t += seconds

    async def next_sleep(self) -> Asked:
        async with asyncio.timeout(5):
            while (ask := await self.asked.get()).over:
                pass
        return ask


# ---------------------------------------------------------------------- a platform that fails
class Platform:
    """A channel whose platform is down until ``down_until`` (clock time), and that can refuse a
    chat, rate-limit its first send, or fail it for ever on its own."""

    capabilities = Capabilities(max_length=10_000, dialect="plain")

    def __init__(self, clock: VirtualClock, *, down_until: float = 0.0, name: str = "rec") -> None:
        self.name = name
        self.clock = clock
        self.down_until = down_until
        self.refuse: set[str] = set()
        self.rate_limit: dict[str, float] = {}
        self.broken: set[str] = set()
        self.delivered: list[tuple[float, Outbound]] = []
        self.tries: Counter[str] = Counter()
        self.last_try: dict[str, float] = {}
        self._changed = asyncio.Condition()

    async def start(self, inbox: Inbox) -> None: ...

    async def stop(self) -> None: ...

    async def send(self, msg: Outbound) -> Delivery:
        if not msg.final or msg.typing:
            return Delivery()
        self.tries[msg.text] += 1
        self.last_try[msg.text] = self.clock.now()
        async with self._changed:
            self._changed.notify_all()
        chat = msg.conversation.chat
        if self.clock.now() < self.down_until:
            raise ChannelError(f"{self.name} sendMessage: Bad Gateway")
        if chat in self.refuse:
            raise ChannelError(
                f"{self.name} sendMessage: Forbidden: bot was blocked by the user", retryable=False, status=403
            )
        if chat in self.broken:
            raise ChannelError(f"{self.name} sendMessage: Internal Server Error")
        if (wait := self.rate_limit.pop(chat, None)) is not None:
            raise ChannelError(f"{self.name} sendMessage: rate limited", retry_after=wait, status=429)
        self.delivered.append((self.clock.now(), msg))
        return Delivery(platform_ids=(f"p{len(self.delivered)}",))

    async def until(self, predicate: Callable[[], bool]) -> None:
        async with asyncio.timeout(10), self._changed:
            await self._changed.wait_for(predicate)

    def texts(self, chat: str | None = None) -> list[str]:
        return [m.text for _, m in self.delivered if chat is None or m.conversation.chat == chat]


# ---------------------------------------------------------------------- helpers
@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    async with Store(f"sqlite:///{tmp_path / 'outbox.db'}", synchronous="NORMAL") as s:
        yield s


@contextlib.asynccontextmanager
async def running(store: Store, platform: Platform, **config: Any) -> AsyncIterator[OutboxDispatcher]:
    outbox = OutboxDispatcher(store, Bus(), {platform.name: platform}, OutboxSection(**config), clock=platform.clock)
    await outbox.start()
    outbox.open()
    try:
        yield outbox
    finally:
        await outbox.stop(grace=1)


async def post(outbox: OutboxDispatcher, chat: str, text: str) -> Outbound:
    """What a run does with its reply: into the outbox table, then onto the bus."""
    out = Outbound(conversation=ConversationRef(channel="rec", chat=chat), text=text)
    await outbox.store.record_outbound(out)
    await outbox.bus.publish("outbound", out)
    return out


async def rows(store: Store, *statuses: str) -> dict[str, OutboxEntry]:
    """The rows in ``statuses``, once every mark submitted so far is committed."""
    await store.run_write(lambda c: None)
    entries, _ = await store.run_read(lambda c: store_outbox.list_entries(c, statuses, 1000))
    return {e.id: e for e in entries}


async def eventually(predicate: Callable[[], bool]) -> None:
    """For counters with no event to wait on; bounded."""
    async with asyncio.timeout(10):
        while not predicate():  # noqa: ASYNC110
            await asyncio.sleep(0.005)


# ---------------------------------------------------------------------- the outage
async def test_an_outage_longer_than_the_old_give_up_loses_no_reply(store: Store) -> None:
    outage = 10 * OLD_GIVE_UP  # over 20 minutes: the old outbox had marked every reply failed
    platform = Platform(VirtualClock(), down_until=outage)
    async with running(store, platform, probe_interval_seconds=PROBE) as outbox:
        posted = [
            await post(outbox, chat, text)
            for chat, text in [("A", "a1"), ("B", "b1"), ("A", "a2"), ("C", "c1"), ("A", "a3")]
        ]
        await platform.until(lambda: platform.clock.now() >= outage / 2)
        posted.append(await post(outbox, "D", "d1"))  # falls due in the middle of the outage
        health = outbox.problems()
        await platform.until(lambda: len(platform.delivered) == len(posted))
        await eventually(lambda: outbox.sent == len(posted))
        sent = await rows(store, "sent")
    assert "sends have failed" in health["rec"] and "Bad Gateway" in health["rec"]
    assert sorted(platform.texts()) == sorted(o.text for o in posted)  # each once
    assert platform.texts("A") == ["a1", "a2", "a3"]  # a later reply never overtakes an earlier one
    assert outbox.failed == 0 and set(sent) == {o.id for o in posted}
    # Recovery took at most one probe interval (in the outbox's own time), for every reply:
    assert all(outage <= at <= outage + PROBE * (1 + JITTER) for at, _ in platform.delivered)
    # One probe at a time: one send per interval for the whole channel, not one per waiting reply.
    failed_tries = sum(platform.tries.values()) - len(posted)
    assert failed_tries <= 3 + outage / PROBE + 1  # A, B and C tried once as the outage began
    assert sent[posted[1].id].attempts == platform.tries["b1"]  # every try is counted on the row


async def test_a_reply_past_the_deadline_is_failed_saying_so(store: Store) -> None:
    platform = Platform(VirtualClock(), down_until=math.inf)
    async with running(store, platform, probe_interval_seconds=PROBE, give_up_after_seconds=60) as outbox:
        early = await post(outbox, "A", "early")
        await platform.until(lambda: platform.clock.now() >= 30)
        late_at = platform.clock.now()
        late = await post(outbox, "B", "late")
        await eventually(lambda: outbox.failed == 2)
        failed = await rows(store, "failed")
    assert platform.delivered == []
    assert platform.last_try["early"] >= 60 and platform.last_try["late"] >= late_at + 60  # each its own deadline
    for out in (early, late):
        row = failed[out.id]
        assert re.fullmatch(
            r"gave up after \d+ s of failed sends \(\d+ attempt\(s\)\); "
            r"last error: rec sendMessage: Bad Gateway",
            row.error,
        ), row.error
        assert row.attempts == platform.tries[out.text] > 1


async def test_a_refusal_fails_the_reply_at_once(store: Store) -> None:
    platform = Platform(VirtualClock())
    platform.refuse = {"X"}
    async with running(store, platform) as outbox:
        refused = await post(outbox, "X", "to a user who blocked the bot")
        await post(outbox, "Y", "to someone else")
        await eventually(lambda: outbox.failed == 1 and outbox.sent == 1)
        row = (await rows(store, "failed"))[refused.id]
        assert outbox.problems() == {}  # the platform answered: the channel works
    assert platform.tries[refused.text] == 1 and row.attempts == 1
    assert row.error == "refused by the platform: rec sendMessage: Forbidden: bot was blocked by the user"
    assert platform.texts() == ["to someone else"]


async def test_a_rate_limit_is_waited_out_by_its_conversation_alone(store: Store) -> None:
    clock = SteppedClock()
    platform = Platform(clock)
    platform.rate_limit = {"X": 30.0}
    async with running(store, platform) as outbox:
        await post(outbox, "X", "limited")
        pause = await clock.next_sleep()
        assert 30 <= pause.seconds <= 30 * (1 + JITTER)  # as long as the platform asked, no less
        await post(outbox, "Y", "not limited")
        await platform.until(lambda: platform.texts() == ["not limited"])
        assert outbox.problems() == {}
        pause.end()
        await platform.until(lambda: len(platform.delivered) == 2)
    assert platform.delivered[1][0] >= 30 and platform.texts("X") == ["limited"]


async def test_a_reply_failing_alone_backs_off_without_holding_its_channel(store: Store) -> None:
    clock = SteppedClock()
    platform = Platform(clock)
    platform.broken = {"P"}
    async with running(
        store, platform, probe_interval_seconds=10, first_delay_seconds=1, max_delay_seconds=4
    ) as outbox:
        broken = await post(outbox, "P", "fails on its own")
        await post(outbox, "Q", "q1")
        # P's first failure looks like an outage: the channel's replies wait until a probe goes through.
        while (ask := await clock.next_sleep()).seconds >= 10:
            ask.end()
        assert platform.texts() == ["q1"] and outbox.problems() == {}
        assert 1 <= ask.seconds <= 1 + JITTER  # P's own back-off, while the channel serves others
        await post(outbox, "Q", "q2")
        await platform.until(lambda: platform.texts() == ["q1", "q2"])  # not held behind P
        ask.end()
        second = await clock.next_sleep()
        assert 2 <= second.seconds <= 2 * (1 + JITTER)  # doubling
        pending = await rows(store, "pending")
    assert pending[broken.id].attempts == platform.tries[broken.text] >= 3
    assert pending[broken.id].error == "rec sendMessage: Internal Server Error"


def test_the_back_off_doubles_up_to_its_cap() -> None:
    backoff = Backoff(first=1.0, cap=60.0, jitter=TENTH_LONGER)
    steps = [backoff.delay(n) for n in range(1, 12)]
    assert all(2 ** (n - 1) <= s <= 2 ** (n - 1) * (1 + JITTER) for n, s in enumerate(steps[:6], 1))
    assert all(60 <= s <= 60 * (1 + JITTER) for s in steps[6:])
    assert backoff.delay(10_000) <= 60 * (1 + JITTER)


# ---------------------------------------------------------------------- restarts and operators
class DownChannel(RecordingChannel):
    """Every send fails as in a network outage; ``tried`` counts them."""

    def __init__(self) -> None:
        super().__init__()
        self.tried = 0

    async def send(self, msg: Outbound) -> Delivery:
        if msg.final and not msg.typing:
            self.tried += 1
        raise ChannelError("rec sendMessage: ConnectError: All connection attempts failed")


async def test_replies_waiting_out_an_outage_are_sent_after_a_restart(hub_settings: Any) -> None:
    settings = hub_settings(outbox={"probe_interval_seconds": 0.01})
    down = DownChannel()
    reply = Outbound(conversation=ConversationRef(channel="rec", chat="c1"), text="waited")
    async with asyncio.timeout(5):  # stopping is prompt: a reply waiting at the gate has nothing to finish
        async with Hub(settings, channels={"rec": down}) as hub:
            assert hub.sessions is not None
            await hub.sessions.send_during_run(reply)
            await eventually(lambda: down.tried >= 3)
            health = hub.health()
    assert health["ok"] is False and "ConnectError" in health["errors"]["rec"]  # type: ignore[index]
    async with Store(settings.store_url) as store:
        [row] = (await rows(store, "pending")).values()
    assert row.id == reply.id and row.attempts >= 3 and "ConnectError" in row.error
    up = RecordingChannel()
    async with Hub(settings, channels={"rec": up}) as hub:
        await up.wait_sent(1)
        assert hub.health()["ok"] is True
    assert up.texts() == ["waited"]
    async with Store(settings.store_url) as store:
        assert await store.outbox_status(reply.id) == ("sent", "p1")


async def test_a_reply_set_back_to_pending_is_sent_by_the_running_dispatcher(store: Store) -> None:
    out = Outbound(conversation=ConversationRef(channel="rec", chat="c1"), text="once failed")
    await store.record_outbound(out)
    await store.mark_failed(out.id, "gave up after 6.0 h of failed sends")
    platform = Platform(VirtualClock())
    async with running(store, platform, resend_check_seconds=0.01) as outbox:
        [entry], problems = await store.run_write(lambda c: store_outbox.resend(c, [out.id]))
        assert entry.status == "pending" and problems == []
        await platform.until(lambda: platform.texts() == ["once failed"])
        await eventually(lambda: outbox.sent == 1)
    assert (await store.outbox_status(out.id))[0] == "sent"  # type: ignore[index]
    assert not await store.run_read(store_outbox.resend_requested)  # the request was taken


# ---------------------------------------------------------------------- through a real SDK
async def test_a_telegram_outage_longer_than_the_old_give_up_loses_no_reply(tmp_path: Path) -> None:
    alice = 1001
    async with FakeTelegram() as fake:
        settings = load_settings(
            environ={},
            overrides={
                "hub": {"data_dir": str(tmp_path)},
                "server": {"enabled": False},
                "agent": {"runtime": "echo"},
                # the outage below is counted in failed sends; these make them quick
                "outbox": {"probe_interval_seconds": 0.02, "first_delay_seconds": 0.01, "max_delay_seconds": 0.05},
                "channels": {
                    "telegram": {
                        "enabled": True,
                        "token": fake.token,
                        "base_url": fake.base_url,
                        "base_file_url": fake.base_file_url,
                        "poll_timeout": 5,
                        "allow_users": [str(alice)],
                        **TELEGRAM_TIMINGS,
                    }
                },
            },
        )
        async with asyncio.timeout(30), Hub(settings) as hub:
            fake.outage("sendMessage", "sendChatAction")
            fake.inject_message(chat_id=alice, text="during the outage")
            # More failed sends than the old outbox's 8 before it marked the reply failed.
            await fake.wait_until(lambda: len(fake.method_calls("sendMessage")) > OLD_ATTEMPTS, within=20)
            assert "sends have failed" in hub.health()["errors"]["telegram"]  # type: ignore[index]
            assert fake.messages(alice) == []
            fake.end_outage()
            await fake.wait_until(lambda: bool(fake.messages(alice)), within=10)
            assert hub.outbox is not None
            await eventually(lambda: hub.outbox is not None and hub.outbox.sent == 1)  # PTB read the answer
            assert hub.outbox.failed == 0 and hub.health()["ok"] is True
        async with Store(settings.store_url) as store:
            assert set(await rows(store, "failed", "pending")) == set()
    assert [m.text for m in fake.messages(alice)] == ["echo: during the outage"]
