"""The run pool: priority admission, FIFO within a level, background capped so chat is never
starved; and tasks across a hub restart (pending run, running continue, paused stay)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from hub.app import Hub
from hub.store import Store
from hub.store.tasks import SQLTaskStore
from hub.tasks import BACKGROUND, INTERACTIVE, JOB, RunPool
from tests.fakes.llm_script import LLMScript, ReplyStep
from tests.fakes.openai_server import FakeOpenAI

from .conftest import RecordingChannel
from .tasks_support import CONV, OWNER, calls_made, llm_settings, next_event, shell, until


async def test_slots_go_by_priority_then_arrival() -> None:
    pool = RunPool(1, max_background=1)
    order: list[str] = []
    await pool.acquire(INTERACTIVE)

    async def run(name: str, priority: int) -> None:
        async with pool.slot(priority):
            order.append(name)

    runners = [
        asyncio.create_task(run(name, prio))
        for name, prio in [("bg1", BACKGROUND), ("job1", JOB), ("bg2", BACKGROUND), ("chat1", INTERACTIVE)]
    ]
    gone = asyncio.create_task(run("cancelled", INTERACTIVE))
    await asyncio.sleep(0)  # let them queue
    gone.cancel()
    assert pool.queued == 4
    pool.release(INTERACTIVE)
    await asyncio.gather(*runners)
    assert order == ["chat1", "job1", "bg1", "bg2"]
    assert pool.running == 0 and pool.background_running == 0


async def test_background_work_leaves_a_slot_for_chat() -> None:
    pool = RunPool(3)
    assert pool.max_background == 2
    await pool.acquire(BACKGROUND)
    await pool.acquire(JOB)
    third = asyncio.create_task(pool.acquire(BACKGROUND))
    await asyncio.sleep(0)
    assert not third.done()  # capped: the last slot is kept for a person
    await asyncio.wait_for(pool.acquire(INTERACTIVE), 1)  # the chat turn goes past it
    pool.release(JOB)
    await asyncio.wait_for(third, 1)
    assert pool.running == 3 and pool.background_running == 2
    with pytest.raises(ValueError, match="at least one worker"):
        RunPool(0)


@pytest.mark.parametrize(("workers", "background"), [(1, 1), (4, 3)])
async def test_a_chat_message_is_answered_next_behind_200_background_tasks(
    tmp_path: Path, workers: int, background: int
) -> None:
    script = LLMScript("echo", latency=0.3, api_key="sk-local")
    ch = RecordingChannel()
    limits: dict[str, Any] = {
        "sessions": {"max_concurrent_runs": workers},
        "tasks": {"max_background_runs": background},
    }
    async with FakeOpenAI(script) as llm, Hub(llm_settings(tmp_path, llm, **limits), channels={ch.name: ch}) as hub:
        for n in range(200):
            await hub.tasks.submit(f"background job {n}", conversation=CONV, owner=OWNER)
        await until(lambda: len(script.requests) >= background)
        await ch.say("hello chat", chat="c2")
        await until(lambda: any(m.text.startswith("echo:") for m in ch.sent if m.conversation.chat == "c2"))
        asked = [str(r.body["messages"]) for r in script.requests]
        done = await hub.tasks.list(states=["completed"])
    # Admitted next: the only requests before the chat's are the background runs holding slots.
    assert ["hello chat" in a for a in asked].index(True) == background
    assert len(done) <= background


async def test_after_a_restart_pending_run_running_continue_paused_stay(tmp_path: Path) -> None:
    script = LLMScript(api_key="sk-local")
    limits: dict[str, Any] = {"sessions": {"max_concurrent_runs": 1}, "tasks": {"max_background_runs": 1}}
    async with FakeOpenAI(script) as llm:
        settings = llm_settings(tmp_path, llm, **limits)
        async with Hub(settings) as hub:
            tasks = hub.tasks
            script.tool_calls(shell("echo P >> p.txt"))
            paused = await tasks.submit("P")
            events = tasks.events(paused.id)
            await next_event(events, "step", "model")
            await tasks.pause(paused.id)
            assert (await tasks.wait(paused.id, timeout=10)).state == "paused"

            script.tool_calls(shell("echo R >> r.txt")).add(ReplyStep(text="cut", first_token_delay=30))
            running = await tasks.submit("R")
            events = tasks.events(running.id)
            await next_event(events, "step", "tool run_command")
            await until(lambda: len(script.requests) == 3)  # R waits for its model's answer
            pending = await tasks.submit("Q")
        async with Store(settings.store_url, lock=False) as store:
            rows = SQLTaskStore(store)
            states = {t.text: t.state for t in await rows.find()}
        assert states == {"P": "paused", "R": "running", "Q": "pending"}

        script.reply("R done").reply("Q done")
        async with Hub(settings) as hub:
            tasks = hub.tasks
            r = await tasks.wait(running.id, timeout=10)
            q = await tasks.wait(pending.id, timeout=10)
            assert (await tasks.get(paused.id)).state == "paused"
            script.reply("P done")
            await tasks.resume(paused.id)
            p = await tasks.wait(paused.id, timeout=10)
    assert (r.state, r.result, r.attempts) == ("completed", "R done", 1)
    assert (q.state, q.result) == ("completed", "Q done")
    assert (p.state, p.result) == ("completed", "P done")
    assert calls_made(tmp_path, "p.txt") == 1 and calls_made(tmp_path, "r.txt") == 1  # none repeated
    script.assert_done()
