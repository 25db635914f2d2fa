from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

from hub.agent import HistoryItem, RunContext
from hub.messages import Button, Outbound

from .conftest import FuncAgent, RecordingChannel, reply

LOOPBACK_SITE = str(Path(__file__).resolve().parents[1] / "loopback" / "site")


async def test_messages_of_one_conversation_run_in_order_and_conversations_in_parallel(make_hub):
    running: set[str] = set()
    b_running = asyncio.Event()
    order: list[str] = []

    async def agent(ctx: RunContext) -> AsyncIterator[Outbound]:
        chat = ctx.conversation.chat
        assert chat not in running, "two runs at once in one session"
        running.add(chat)
        order.append(ctx.inbound.text)
        if chat == "B":
            b_running.set()
        if ctx.inbound.text == "a0":
            await asyncio.wait_for(b_running.wait(), 5)  # A's first run overlaps B's
        await asyncio.sleep(0.001)
        running.discard(chat)
        yield reply(ctx, f"re {ctx.inbound.text}")

    ch = RecordingChannel()

    async def send_all(chat: str) -> None:
        for i in range(5):
            await ch.say(f"{chat.lower()}{i}", chat=chat)

    async with make_hub(FuncAgent(agent), ch):
        await asyncio.gather(send_all("A"), send_all("B"))
        await ch.wait_sent(10)
    assert [o for o in order if o.startswith("a")] == [f"a{i}" for i in range(5)]
    assert ch.texts("A") == [f"re a{i}" for i in range(5)]
    assert ch.texts("B") == [f"re b{i}" for i in range(5)]


async def test_global_concurrency_limit(make_hub):
    peak = 0
    active = 0
    release = asyncio.Event()

    async def agent(ctx: RunContext) -> AsyncIterator[Outbound]:
        nonlocal peak, active
        active += 1
        peak = max(peak, active)
        if active == 3:
            release.set()
        await release.wait()
        await asyncio.sleep(0)
        active -= 1
        yield reply(ctx, "ok")

    ch = RecordingChannel()
    async with make_hub(FuncAgent(agent), ch, sessions={"max_concurrent_runs": 3}):
        await asyncio.gather(*(ch.say("x", chat=f"c{i}") for i in range(12)))
        await ch.wait_sent(12)
    assert peak == 3


async def test_redelivery_is_answered_once(make_hub):
    ch = RecordingChannel()
    async with make_hub(None, ch, agent={"runtime": "echo"}):
        assert await ch.say("hi", pid="same") is True
        assert await ch.say("hi", pid="same") is False
        await ch.wait_sent(1)
        await ch.say("second")
        await ch.wait_sent(2)
    assert ch.texts() == ["echo: hi", "echo: second"]


async def test_stop_aborts_the_run_and_the_queue_goes_on(make_hub):
    started = asyncio.Event()

    async def agent(ctx: RunContext) -> AsyncIterator[Outbound]:
        if ctx.inbound.text == "slow":
            started.set()
            await asyncio.sleep(30)
        yield reply(ctx, f"done {ctx.inbound.text}")

    ch = RecordingChannel()
    async with make_hub(FuncAgent(agent), ch):
        await ch.say("slow")
        await ch.say("next")
        await started.wait()
        await ch.say("", kind="command", command="stop")
        await ch.wait_sent(3)
    assert sorted(ch.texts()) == sorted(["Stopping.", "Stopped.", "done next"])
    assert ch.texts().index("Stopped.") < ch.texts().index("done next")


async def test_ask_is_answered_by_the_button_of_the_right_user_only(make_hub):
    answers: list[str | None] = []

    async def agent(ctx: RunContext) -> AsyncIterator[Outbound]:
        q = reply(ctx, "Run it?", buttons=(Button(id="yes-1", label="Yes"), Button(id="no-1", label="No")))
        got = await ctx.ask(q, user_id=ctx.sender.id, timeout=5)
        answers.append(got.button if got else None)
        yield reply(ctx, f"answer {answers[-1]}")

    ch = RecordingChannel()
    async with make_hub(FuncAgent(agent), ch):
        await ch.say("go", user="alice")
        await ch.wait_sent(1)
        await ch.say("", kind="button", button="yes-1", user="mallory")
        await ch.wait_sent(2)
        assert "Only the person" in ch.sent[1].text
        await ch.say("", kind="button", button="yes-1", user="alice")
        await ch.wait_sent(3)
    assert answers == ["yes-1"]
    assert ch.sent[2].text == "answer yes-1"


async def test_stop_does_not_wait_out_the_grace_for_a_question_and_asks_again_after(make_hub, hub_settings):
    """Regression: leaving `autohands chat` (or SIGTERM) while an approval was pending took the
    whole stop grace (10 s), though nothing but the user could finish that run."""
    from hub.app import Hub

    async def agent(ctx: RunContext) -> AsyncIterator[Outbound]:
        got = await ctx.ask(
            reply(ctx, "Approve?", buttons=(Button(id="y", label="Yes"),)), user_id=ctx.sender.id, timeout=60
        )
        yield reply(ctx, f"done {got.button if got else None}")

    settings = hub_settings(sessions={"stop_grace_seconds": 30})
    ch = RecordingChannel()
    async with asyncio.timeout(10):
        async with Hub(settings, agent=FuncAgent(agent), channels={"rec": ch}):
            await ch.say("delete it")
            await ch.wait_sent(1)
        again = RecordingChannel()
        async with Hub(settings, agent=FuncAgent(agent), channels={"rec": again}):
            await again.wait_sent(1)  # the unanswered message is resumed: the question comes again
            await again.say("", kind="button", button="y", pid="tap-1")
            await again.wait_sent(2)
    assert ch.texts() == ["Approve?"]
    assert again.texts() == ["Approve?", "done y"]


async def test_ask_accepts_a_text_yes_and_times_out(make_hub):
    async def agent(ctx: RunContext) -> AsyncIterator[Outbound]:
        q = reply(ctx, "Sure?", buttons=(Button(id="ok", label="OK"),))
        got = await ctx.ask(q, user_id=ctx.sender.id, timeout=0.3 if ctx.inbound.text == "t" else 5)
        yield reply(ctx, f"got {got.text if got else None}")

    ch = RecordingChannel()
    async with make_hub(FuncAgent(agent), ch):
        await ch.say("go")
        await ch.wait_sent(1)
        await ch.say("yes")
        await ch.wait_sent(2)
        await ch.say("t")
        await ch.wait_sent(4)
    assert ch.texts()[1] == "got yes"
    assert ch.texts()[3] == "got None"


async def test_history_persists_and_new_clears_it_and_sessions_reload_after_eviction(make_hub, hub_settings):
    seen: list[int] = []

    async def agent(ctx: RunContext) -> AsyncIterator[Outbound]:
        seen.append(len(ctx.history))
        ctx.remember(HistoryItem(kind="user", data={"text": ctx.inbound.text}))
        yield reply(ctx, "ok")

    ch = RecordingChannel()
    hub = make_hub(FuncAgent(agent), ch)
    async with hub:
        await ch.say("one")
        await ch.wait_sent(1)
        assert hub.sessions is not None
        assert hub.sessions.evict_idle(now=10**9) == 1
        await ch.say("two")
        await ch.wait_sent(2)
    # a new hub on the same database sees the history
    ch2 = RecordingChannel()
    async with make_hub(FuncAgent(agent), ch2):
        await ch2.say("three", pid="h2-1")
        await ch2.wait_sent(1)
        await ch2.say("", kind="command", command="new", pid="h2-2")
        await ch2.wait_sent(2)
        await ch2.say("four", pid="h2-3")
        await ch2.wait_sent(3)
    assert seen == [0, 1, 2, 0]


async def test_agent_crash_gets_one_clear_reply_with_an_incident_id(make_hub):
    async def agent(ctx: RunContext) -> AsyncIterator[Outbound]:
        raise RuntimeError("boom")
        yield  # pragma: no cover

    ch = RecordingChannel()
    async with make_hub(FuncAgent(agent), ch):
        await ch.say("hi")
        await ch.wait_sent(1)
    assert ch.texts()[0].startswith("Sorry — something went wrong on my side (incident ")
    assert "boom" not in ch.texts()[0]


async def test_transient_send_failure_is_retried_from_the_outbox(make_hub):
    from hub.errors import ChannelError

    ch = RecordingChannel()
    ch.fail_next = [ChannelError("flaky", retryable=True, retry_after=0.05)]
    async with make_hub(None, ch, agent={"runtime": "echo"}) as hub:
        await ch.say("hi")
        await ch.wait_sent(1)
        assert hub.outbox is not None
    assert ch.texts() == ["echo: hi"]


async def test_unknown_command_and_help(make_hub):
    ch = RecordingChannel()
    async with make_hub(None, ch):
        await ch.say("", kind="command", command="nope")
        await ch.say("", kind="command", command="help")
        await ch.wait_sent(2)
    assert "Unknown command /nope" in ch.texts()[0]
    assert "/stop" in ch.texts()[1]


async def test_outbounds_left_pending_by_a_crash_are_sent_only_after_channels_start(make_hub, hub_settings):
    """Regression: resumed outbox rows were sent before the channel had started."""
    from hub.app import Hub
    from hub.messages import ConversationRef
    from hub.store import Store

    settings = hub_settings()
    async with Store(settings.store_url) as store:
        await store.record_outbound(Outbound(conversation=ConversationRef(channel="rec", chat="c1"), text="left"))

    class StrictChannel(RecordingChannel):
        async def send(self, msg: Outbound):  # type: ignore[override]
            assert self.started, "send before start"
            return await super().send(msg)

    ch = StrictChannel()
    async with Hub(settings, channels={"rec": ch}):
        await ch.wait_sent(1)
    assert ch.texts() == ["left"]


async def test_typing_is_renewed_during_a_long_run(make_hub, monkeypatch):
    import hub.sessions

    monkeypatch.setattr(hub.sessions, "TYPING_RENEW_SECONDS", 0.05)
    typing_seen = asyncio.Event()

    class TypingChannel(RecordingChannel):
        async def send(self, msg: Outbound):  # type: ignore[override]
            if msg.typing:
                self.typings = getattr(self, "typings", 0) + 1
                if self.typings >= 3:
                    typing_seen.set()
            return await super().send(msg)

    async def agent(ctx: RunContext) -> AsyncIterator[Outbound]:
        await asyncio.wait_for(typing_seen.wait(), 5)
        yield reply(ctx, "done")

    ch = TypingChannel()
    async with make_hub(FuncAgent(agent), ch):
        await ch.say("slow")
        await ch.wait_sent(1)
    assert ch.texts() == ["done"]


async def test_channels_built_from_config_learn_every_command(hub_settings, monkeypatch):
    """Regression: the session commands were registered after channels had been told the list."""
    from hub.app import Hub

    monkeypatch.syspath_prepend(LOOPBACK_SITE)
    settings = hub_settings(channels={"loopback": {"enabled": True, "base_url": "http://127.0.0.1:9"}})
    async with Hub(settings) as hub:
        names = {c.name for c in hub.channels["loopback"].context.commands}  # type: ignore[attr-defined]
    assert {"new", "stop", "status", "help", "remind", "every", "jobs", "cancel", "tz"} <= names


async def test_sessions_beyond_the_memory_cap_are_evicted_oldest_first(make_hub):
    ch = RecordingChannel()
    async with make_hub(None, ch, agent={"runtime": "echo"}, sessions={"max_sessions_in_memory": 5}) as hub:
        for i in range(8):
            await ch.say(f"m{i}", chat=f"c{i}")
            await ch.wait_sent(i + 1)
        assert hub.sessions is not None
        assert list(hub.sessions.sessions) == [f"rec:c{i}" for i in range(3, 8)]


async def test_a_run_is_marked_processing_with_its_attempt_before_the_agent_is_called(make_hub):
    from sqlalchemy import select

    from hub.store.tables import MESSAGES

    seen: list[tuple[str, int]] = []

    async def state(inbound_id: int) -> tuple[str, int]:
        query = select(MESSAGES.c.status, MESSAGES.c.attempts).where(MESSAGES.c.id == inbound_id)
        return tuple(await hub.store.run_read(lambda c: c.execute(query).one()))

    async def agent(ctx: RunContext) -> AsyncIterator[Outbound]:
        seen.append(await state(ctx.inbound.id))
        yield reply(ctx, "done")

    ch = RecordingChannel()
    hub = make_hub(FuncAgent(agent), ch)
    async with hub:
        await ch.say("slow")
        await ch.wait_sent(1)
        after = await state(ch.sent[0].inbound_id)
    assert seen == [("processing", 1)]
    assert after == ("answered", 1)  # committed with the reply, before it was published


async def test_a_message_that_is_no_answer_to_a_pending_question_is_told_at_once_and_runs_after_it(make_hub):
    """It is neither taken as "no" nor left waiting in silence for the whole question timeout."""
    from hub.sessions import WAITING_FOR_OTHER_TEXT, WAITING_FOR_YOU_TEXT

    async def agent(ctx: RunContext) -> AsyncIterator[Outbound]:
        if ctx.inbound.text == "go":
            q = reply(ctx, "Sure?", buttons=(Button(id="ok", label="OK"),))
            got = await ctx.ask(q, user_id=ctx.sender.id, timeout=60)
            yield reply(ctx, f"got {got.text if got else None}")
        else:
            yield reply(ctx, f"re {ctx.inbound.text}")

    ch = RecordingChannel()
    async with asyncio.timeout(10), make_hub(FuncAgent(agent), ch):
        await ch.say("go", user="alice")
        await ch.wait_sent(1)
        await ch.say("what would it do?", user="alice", pid="w")
        await ch.wait_sent(2)
        await ch.say("hello", user="bob", pid="b")
        await ch.wait_sent(3)
        await ch.say("Yes!", user="alice")
        await ch.wait_sent(6)
    assert ch.texts() == [
        "Sure?",
        WAITING_FOR_YOU_TEXT,
        WAITING_FOR_OTHER_TEXT,
        "got Yes!",
        "re what would it do?",
        "re hello",
    ]
    assert [o.reply_to_platform_id for o in ch.sent[1:3]] == ["w", "b"]
