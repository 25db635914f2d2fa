"""Attempts and the crash-loop guard: a run counts one attempt as it starts, nothing else does.

A "restart" is a new ``Hub`` on the same data directory. A run that "kills the hub" blocks
until the hub is torn down under it: the stop's grace runs out, the run is cancelled and its
message is left unanswered, as after a crash (nothing of the run is written).
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from sqlalchemy import select

from hub.agent import RunContext
from hub.app import Hub
from hub.messages import Button, ConversationRef, Inbound, JobInfo, Outbound, Sender, utcnow
from hub.sessions import MAX_ATTEMPTS, SET_ASIDE_TEXT
from hub.store import Store
from hub.store.codec import inbound_from_json
from hub.store.tables import MESSAGES

from .conftest import RecordingChannel, reply

pytestmark = pytest.mark.timeout(60)
KILL = {"sessions": {"stop_grace_seconds": 0.05}}
SET_ASIDE = SET_ASIDE_TEXT.split(":")[0]


def forever() -> asyncio.Future[None]:
    """Never done: only the hub's stop ends a run waiting for it."""
    return asyncio.get_running_loop().create_future()


class DyingAgent:
    """Answers ``re <text>`` after awaiting ``waits(text, call_number)`` where that is not None.
    Notes the inbound's stored (status, attempts) as each run begins."""

    def __init__(self, waits: Callable[[str, int], Awaitable[Any] | None]) -> None:
        self.waits = waits
        self.hub: Hub | None = None
        self.calls: Counter[str] = Counter()
        self.seen: dict[str, list[tuple[str, int]]] = {}
        self._changed = asyncio.Condition()

    async def run(self, ctx: RunContext) -> AsyncIterator[Outbound]:
        text = ctx.inbound.text
        assert self.hub is not None
        self.seen.setdefault(text, []).append(await stored(self.hub.store, ctx.inbound.id))
        self.calls[text] += 1
        async with self._changed:
            self._changed.notify_all()
        wait = self.waits(text, self.calls[text])
        if wait is not None:
            await wait
        yield reply(ctx, f"re {text}")

    def called(self, text: str, times: int) -> Callable[[RecordingChannel], Awaitable[None]]:
        """A ``live(until=…)`` for "the run number ``times`` of ``text`` has begun"."""
        return lambda _ch: self.wait_called(text, times)

    async def wait_called(self, text: str, times: int) -> None:
        async with asyncio.timeout(5), self._changed:
            await self._changed.wait_for(lambda: self.calls[text] >= times)


async def stored(store: Any, inbound_id: int) -> tuple[str, int]:
    query = select(MESSAGES.c.status, MESSAGES.c.attempts).where(MESSAGES.c.id == inbound_id)
    row = await store.run_read(lambda c: c.execute(query).one())
    return row.status, row.attempts


async def rows_by_text(store: Any) -> dict[str, tuple[str, int]]:
    """Every stored inbound's (status, attempts), by its text (``/name`` for a command)."""
    query = select(MESSAGES.c.payload, MESSAGES.c.status, MESSAGES.c.attempts)
    rows = await store.run_read(lambda c: c.execute(query).all())
    found = {}
    for r in rows:
        inbound = inbound_from_json(r.payload)
        found[f"/{inbound.command}" if inbound.kind == "command" else inbound.text] = (r.status, r.attempts)
    return found


async def live(
    make_hub: Callable[..., Hub],
    agent: DyingAgent,
    until: Callable[[RecordingChannel], Any],
    *,
    first: Callable[[RecordingChannel], Any] | None = None,
) -> RecordingChannel:
    """One hub's life on the shared data dir: start, ``first`` (send), await ``until``, tear down."""
    ch = RecordingChannel()
    hub = make_hub(agent, ch, **KILL)
    agent.hub = hub
    async with hub:
        if first is not None:
            await first(ch)
        await until(ch)
    return ch


async def test_a_message_queued_behind_others_through_four_restarts_is_answered_not_set_aside(make_hub):
    """Regression: every start charged an attempt to every unanswered message, so one that only
    waited in its queue through restarts was set aside "after 3 failures" without ever running.
    Here the chat's queue is held up by a different slow message in each of four hub lives; a
    queued command and a ``send`` job are charged nothing until they run either."""
    agent = DyingAgent(lambda text, n: forever() if text.startswith("h") and n == 1 else None)
    job = JobInfo(job_id="j1", action="send", due_at=utcnow())

    async def send_all(ch: RecordingChannel) -> None:
        for i in range(1, 5):
            await ch.say(f"h{i}", pid=f"h{i}")
        await ch.say("", kind="command", command="new", pid="cmd")
        assert ch.inbox is not None
        await ch.inbox(
            Inbound(
                kind="job",
                conversation=ConversationRef(channel="rec", chat="c1"),
                sender=Sender(id="u1"),
                text="tea time",
                platform_id="job",
                job=job,
            )
        )
        await ch.say("q", pid="q")

    lives = [await live(make_hub, agent, agent.called("h1", 1), first=send_all)]
    for i in range(2, 5):  # each life answers the previous slow message, then hangs on the next
        lives.append(await live(make_hub, agent, agent.called(f"h{i}", 1)))
    ch = RecordingChannel()
    hub = make_hub(agent, ch)
    agent.hub = hub
    async with hub:
        await ch.wait_sent(4)
        rows = await rows_by_text(hub.store)

    texts = [t for life in (*lives, ch) for t in life.texts()]
    assert texts == ["re h1", "re h2", "re h3", "re h4", "Started a fresh conversation.", "tea time", "re q"]
    assert agent.calls == {"h1": 2, "h2": 2, "h3": 2, "h4": 2, "q": 1}
    assert agent.seen["q"] == [("processing", 1)]  # counted, and committed, before the run began
    assert rows == {
        "h1": ("answered", 2),
        "h2": ("answered", 2),
        "h3": ("answered", 2),
        "h4": ("answered", 2),
        "/new": ("answered", 1),
        "tea time": ("answered", 0),
        "q": ("answered", 1),
    }


async def test_a_message_whose_runs_keep_killing_the_hub_is_tried_max_attempts_times_then_set_aside(make_hub):
    agent = DyingAgent(lambda text, n: forever() if text == "hang" else None)

    async def first(ch: RecordingChannel) -> None:
        await ch.say("hang", pid="hang")
        await ch.say("after", pid="after")

    lives = [await live(make_hub, agent, agent.called("hang", 1), first=first)]
    for n in range(2, MAX_ATTEMPTS + 1):
        lives.append(await live(make_hub, agent, agent.called("hang", n)))
    assert all(life.sent == [] for life in lives)

    ch = RecordingChannel()
    hub = make_hub(agent, ch)
    agent.hub = hub
    async with hub:
        await ch.wait_sent(2)
        await ch.say("again", pid="again")  # the conversation goes on as usual
        await ch.wait_sent(3)
        rows = await rows_by_text(hub.store)
    notice, *rest = ch.sent
    assert notice.text.startswith(SET_ASIDE) and "incident" in notice.text
    assert notice.reply_to_platform_id == "hang" and notice.inbound_id > 0
    assert rest[0].text == "re after" and rest[1].text == "re again"
    assert agent.calls["hang"] == MAX_ATTEMPTS
    # Each attempt was on disk before its run could do anything.
    assert agent.seen["hang"] == [("processing", n) for n in range(1, MAX_ATTEMPTS + 1)]
    assert rows["hang"] == ("failed", MAX_ATTEMPTS)

    # Told once: the next life has nothing left to say about it.
    later = await live(make_hub, agent, lambda ch: ch.wait_sent(1), first=lambda ch: ch.say("ping", pid="ping"))
    assert later.texts() == ["re ping"] and agent.calls["hang"] == MAX_ATTEMPTS


async def test_stopping_with_runs_in_flight_answers_each_message_exactly_once(make_hub, hub_settings):
    """SIGTERM (``request_stop``, then the hub's exit) with runs in flight: runs that end within
    the stop's grace are answered then; the others are cut, left unanswered, and resumed once
    after the restart, as is what was queued behind them. Nothing is answered twice."""
    stopping = asyncio.Event()

    def waits(text: str, n: int) -> Awaitable[Any] | None:
        if text.startswith("finishing"):
            return stopping.wait()  # still running when the stop begins, done within its grace
        return forever() if text.startswith("stuck") and n == 1 else None

    class StoppingChannel(RecordingChannel):
        def __init__(self) -> None:
            super().__init__()
            self.ready = asyncio.Event()

        async def start(self, inbox: Any) -> None:
            await super().start(inbox)
            self.ready.set()

        async def stop(self) -> None:  # the hub stops its channels first, then its sessions
            stopping.set()
            await super().stop()

    agent = DyingAgent(waits)
    chats = range(4)
    ch = StoppingChannel()
    hub = Hub(hub_settings(sessions={"stop_grace_seconds": 1.0}), agent=agent, channels={"rec": ch})
    agent.hub = hub
    served = asyncio.create_task(_serve(hub))
    async with asyncio.timeout(5):
        await ch.ready.wait()
    for c in chats:
        await ch.say(f"finishing {c}", chat=f"f{c}", pid=f"f{c}")
        await ch.say(f"stuck {c}", chat=f"s{c}", pid=f"s{c}")
        await ch.say(f"queued {c}", chat=f"s{c}", pid=f"q{c}")
    for c in chats:
        await agent.wait_called(f"stuck {c}", 1)
        await agent.wait_called(f"finishing {c}", 1)
    hub.request_stop()  # what the SIGTERM handler of `autohands run` does
    async with asyncio.timeout(10):
        await served

    again = RecordingChannel()
    hub2 = make_hub(agent, again)
    agent.hub = hub2
    async with hub2:
        await again.wait_sent(2 * len(chats))
        rows = await rows_by_text(hub2.store)

    replies = Counter(o.reply_to_platform_id for o in (*ch.sent, *again.sent))
    assert replies == Counter({f"{p}{c}": 1 for p in "fsq" for c in chats})
    assert sorted(ch.texts()) == [f"re finishing {c}" for c in chats]
    assert agent.calls == {
        **{f"finishing {c}": 1 for c in chats},
        **{f"stuck {c}": 2 for c in chats},
        **{f"queued {c}": 1 for c in chats},
    }
    assert {text: row for text, row in rows.items() if row != ("answered", 1)} == {
        f"stuck {c}": ("answered", 2) for c in chats
    }


async def _serve(hub: Hub) -> None:
    """``autohands run`` in short: serve until asked to stop."""
    async with hub:
        await hub.wait_stopped()


async def test_only_a_run_starting_counts_an_attempt(tmp_path) -> None:
    """Reading what is unanswered (each start does) counts nothing; starting a run counts one,
    in the same write that marks the message processing."""
    conv = ConversationRef(channel="t", chat="1")
    async with Store(f"sqlite:///{tmp_path / 'db.sqlite'}") as store:
        waiting = await store.record_inbound(
            Inbound(kind="message", conversation=conv, sender=Sender(id="u"), text="waits", platform_id="p1")
        )
        assert waiting is not None
        for _ in range(MAX_ATTEMPTS + 1):
            assert [(i.id, n) for i, n in await store.pending_inbound()] == [(waiting.id, 0)]
        written = store.mark_processing(waiting.id)
        assert written is not None
        await written
        assert await stored(store, waiting.id) == ("processing", 1)
        assert [(i.id, n) for i, n in await store.pending_inbound()] == [(waiting.id, 1)]


class AskingAgent:
    """Asks a question each run and answers ``re <text>`` once it is answered."""

    def __init__(self) -> None:
        self.runs = 0

    async def run(self, ctx: RunContext) -> AsyncIterator[Outbound]:
        self.runs += 1
        question = Outbound(
            conversation=ctx.conversation,
            text="Approve?",
            buttons=(Button(id=f"approve:{self.runs}", label="Approve"),),
        )
        answer = await ctx.ask(question, user_id=ctx.sender.id, timeout=3600)
        yield reply(ctx, f"re {ctx.inbound.text} ({'approved' if answer else 'no answer'})")


async def test_restarts_while_a_question_waits_for_a_person_never_set_the_message_aside(make_hub):
    """A run waiting for a person's answer is cut by every stop; it cannot be the one killing
    the hub, so its try is taken back: four restarts later the question is still asked."""
    agent = AskingAgent()
    for life in range(MAX_ATTEMPTS + 1):
        ch = RecordingChannel()
        async with make_hub(agent, ch, **KILL) as hub:
            if life == 0:
                await ch.say("delete it", pid="m1")
            [asked] = await ch.wait_sent(1)
            assert asked.text == "Approve?"
            rows = await rows_by_text(hub.store)
            assert rows["delete it"] == ("processing", 1), rows  # this run's try only
    ch = RecordingChannel()
    async with make_hub(agent, ch, **KILL):
        [asked] = await ch.wait_sent(1)
        await ch.say("", kind="button", button=asked.buttons[0].id, pid="tap")
        await ch.wait_sent(2)
    assert ch.texts()[-1] == "re delete it (approved)" and agent.runs == MAX_ATTEMPTS + 2
