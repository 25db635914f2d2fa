"""The task service on a real hub: moves (legal and refused), who may control a task, progress
and results in the origin conversation, requests beside the running hub, lifecycle."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from hub.agent import Checkpointing, HistoryItem, PauseRequested, RunContext
from hub.app import Hub
from hub.messages import Outbound
from hub.store import Store
from hub.store.tables import USAGE
from hub.tasks import TaskError, open_tasks
from hub.tasks.service import TaskService
from tests.fakes.llm_script import LLMScript, ReplyStep, ScriptedCall
from tests.fakes.openai_server import FakeOpenAI

from .conftest import FuncAgent, RecordingChannel, reply
from .tasks_support import (
    ADMIN,
    CONV,
    OTHER,
    OWNER,
    alive,
    calls_made,
    llm_settings,
    marker,
    next_event,
    settled,
    shell,
    until,
)


def answering(text: str = "42") -> FuncAgent:
    async def run(ctx: RunContext) -> AsyncIterator[Outbound]:
        if isinstance(ctx, Checkpointing):
            await ctx.step([HistoryItem(kind="user", data={"text": ctx.inbound.text})], label="model")
        yield reply(ctx, f"{text} ({ctx.settings.get('mode')})")

    return FuncAgent(run)


class Gate:
    """An agent that steps, then waits for ``open`` before answering (a run held mid-way)."""

    def __init__(self) -> None:
        self.open = asyncio.Event()
        self.started = asyncio.Event()
        self.runs = 0
        self.fail_first = False

    def agent(self) -> FuncAgent:
        async def run(ctx: RunContext) -> AsyncIterator[Outbound]:
            self.runs += 1
            assert isinstance(ctx, Checkpointing)
            done = [HistoryItem(kind="user", data={"n": self.runs})]
            await ctx.step(done, label="model")
            self.started.set()
            await self.open.wait()
            if self.fail_first and self.runs == 1:
                raise RuntimeError("boom")
            done.append(HistoryItem(kind="tool", data={"n": self.runs}))
            await ctx.step(done, label="tool x")
            yield reply(ctx, "done")

        return FuncAgent(run)


async def test_a_task_runs_and_its_progress_and_result_are_posted(make_hub: Callable[..., Hub]) -> None:
    ch = RecordingChannel()
    async with make_hub(answering(), ch) as hub:
        task = await hub.tasks.submit("what is six times seven", conversation=CONV, owner=OWNER, mode="plan")
        assert task.state == "pending" and len(task.id) == 8
        done = await hub.tasks.wait(task.id, timeout=10)
        sent = await ch.wait_sent(4)
    assert done.state == "completed" and done.attempts == 1
    assert done.result == "42 (plan)"  # the task's mode reaches the run as the setting `mode`
    assert done.checkpoint[0].data == {"text": "what is six times seven"}
    first, *edits, result = sent
    assert first.text == f"Task {task.id}: started"
    assert all(e.edit_of == first.id for e in edits)
    assert edits[-1].text == f"Task {task.id}: completed"
    assert result.text == f"Task {task.id} is done:\n\n42 (plan)" and result.edit_of is None


async def test_every_refused_move_names_the_state_and_what_is_possible(make_hub: Callable[..., Hub]) -> None:
    gate = Gate()
    async with make_hub(gate.agent()) as hub:
        tasks = hub.tasks
        gate.open.set()
        done = await tasks.execute("x", timeout=10)
        for act, message in [
            (tasks.pause, "is completed, so it cannot pause; nothing more can be done with it"),
            (tasks.cancel, "is completed, so it cannot cancel; nothing more can be done with it"),
            (tasks.resume, "is completed, so it cannot resume; nothing more can be done with it"),
            (tasks.retry, "is completed, so it cannot retry; nothing more can be done with it"),
        ]:
            with pytest.raises(TaskError, match=f"^task {done.id} {message}$"):
                await act(done.id)
        with pytest.raises(TaskError, match=r"^no task nope$"):
            await tasks.get("nope")


async def test_pause_resume_cancel_retry_from_a_checkpoint(make_hub: Callable[..., Hub]) -> None:
    gate = Gate()
    async with make_hub(gate.agent()) as hub:
        tasks = hub.tasks
        task = await tasks.submit("work", conversation=CONV, owner=OWNER)
        with pytest.raises(TaskError, match="is pending, so it cannot resume; cancel it"):
            await tasks.resume(task.id)
        await gate.started.wait()
        events = tasks.events(task.id)
        assert (await tasks.pause(task.id, by=OWNER)).state == "running"  # taken at the next step
        gate.open.set()
        paused = await tasks.wait(task.id, timeout=10)
        assert paused.state == "paused" and len(paused.checkpoint) == 2
        assert (await next_event(events, "state")).state == "paused"
        with pytest.raises(TaskError, match="is paused, so it cannot cancel; resume it"):
            await tasks.cancel(task.id)
        with pytest.raises(TaskError, match="is paused, so it cannot retry; resume it"):
            await tasks.retry(task.id)
        gate.open.clear()
        gate.started.clear()
        assert (await tasks.resume(task.id)).state == "running"
        await gate.started.wait()
        cancelled = await tasks.cancel(task.id, by=ADMIN)
        assert cancelled.state == "cancelled" and cancelled.error == "cancelled by Root"
        assert len(cancelled.checkpoint) == 3  # resumed from 2 items, one step more
        with pytest.raises(TaskError, match="is cancelled, so it cannot pause; retry it"):
            await tasks.pause(task.id)
        gate.open.set()
        again = await tasks.retry(task.id)
        assert again.state == "pending" and len(again.checkpoint) == 3
        done = await tasks.wait(task.id, timeout=10)
        assert done.state == "completed" and done.attempts == 2 and len(done.checkpoint) == 5


async def test_a_failed_task_is_retried_from_the_start(make_hub: Callable[..., Hub]) -> None:
    gate = Gate()
    gate.fail_first = True
    gate.open.set()
    ch = RecordingChannel()
    async with make_hub(gate.agent(), ch) as hub:
        task = await hub.tasks.submit("work", conversation=CONV, owner=OWNER)
        failed = await hub.tasks.wait(task.id, timeout=10)
        assert failed.state == "failed" and failed.error is not None and failed.error.startswith("RuntimeError")
        await ch.wait_sent(4)
        assert ch.sent[-1].text.startswith(f"Task {task.id} failed: RuntimeError (incident ")
        with pytest.raises(TaskError, match="is failed, so it cannot resume; retry it"):
            await hub.tasks.resume(task.id)
        again = await hub.tasks.retry(task.id, from_start=True)
        assert again.checkpoint == () and again.error is None
        done = await hub.tasks.wait(task.id, timeout=10)
    assert done.state == "completed" and len(done.checkpoint) == 2 and done.attempts == 2


async def test_only_the_owner_or_an_admin_sees_and_controls_a_task(make_hub: Callable[..., Hub]) -> None:
    gate = Gate()
    async with make_hub(gate.agent()) as hub:
        tasks = hub.tasks
        task = await tasks.submit("mine", conversation=CONV, owner=OWNER)
        await gate.started.wait()
        for act in (tasks.get, tasks.cancel, tasks.pause, tasks.resume, tasks.retry):
            with pytest.raises(TaskError, match=f"^no task {task.id}$"):
                await act(task.id, by=OTHER)
        assert await tasks.list(by=OTHER) == []
        assert [t.id for t in await tasks.list(by=OWNER)] == [task.id]
        assert [t.id for t in await tasks.list(by=ADMIN, states=["running"])] == [task.id]
        assert (await tasks.get(task.id, by=ADMIN)).id == task.id
        gate.open.set()
        await tasks.wait(task.id, timeout=10)


async def test_requests_beside_the_running_hub_are_applied(make_hub: Callable[..., Hub]) -> None:
    gate = Gate()
    hub = make_hub(gate.agent(), tasks={"poll_seconds": 0.02})
    async with hub, open_tasks(hub.settings) as beside:
        task = await beside.submit("from the cli")
        assert (await beside.get(task.id)).state == "pending"
        await gate.started.wait()
        assert (await beside.get(task.id)).state == "running"
        with pytest.raises(TaskError, match="is running, so it cannot resume; pause it or cancel it"):
            await beside.resume(task.id)
        await beside.cancel(task.id)
        cancelled = await beside.wait(task.id, timeout=10)
        assert cancelled.state == "cancelled" and cancelled.error == "cancelled by operator"
        await beside.retry(task.id, from_start=True)
        gate.open.set()
        done = await beside.wait(task.id, timeout=10)
        assert done.state == "completed" and done.result == "done" and done.attempts == 2


async def test_events_tell_states_and_steps_until_the_end(make_hub: Callable[..., Hub]) -> None:
    async with make_hub(answering()) as hub:
        task = await hub.tasks.submit("x")
        seen = [(e.kind, e.state, e.detail) async for e in hub.tasks.events(task.id)]
        assert (await hub.tasks.execute("y", timeout=10)).state == "completed"
    assert seen == [("state", "running", ""), ("step", "running", "model"), ("state", "completed", "")]


async def test_the_service_keeps_the_lifecycle_rule(make_hub: Callable[..., Hub]) -> None:
    async with make_hub(answering()) as hub:
        service = hub.tasks
        with pytest.raises(RuntimeError, match="TaskService already started"):
            await service.start()
    await service.stop()  # stopped already: nothing
    with pytest.raises(RuntimeError, match="cannot start again"):
        await service.start()
    with pytest.raises(TaskError, match="the hub is not running"):
        await service.submit("late")
    with pytest.raises(RuntimeError, match="has not been started"):
        _ = Hub(hub.settings).tasks
    assert hub.sessions is not None
    never = TaskService(hub.store, answering(), hub.sessions.pool, hub.sessions)
    await never.stop()


async def test_a_paused_run_raises_pause_requested_at_its_next_step(make_hub: Callable[..., Hub]) -> None:
    steps: list[str] = []

    async def run(ctx: RunContext) -> AsyncIterator[Outbound]:
        assert isinstance(ctx, Checkpointing)
        for n in range(3):
            try:
                await ctx.step([HistoryItem(kind="user", data={"n": i}) for i in range(n + 1)], label=f"s{n}")
            except PauseRequested:
                steps.append(f"paused at s{n}")
                raise
            steps.append(f"s{n}")
            if n == 0:
                await hub.tasks.pause(task_id)
        yield reply(ctx, "never")

    hub: Any = make_hub(FuncAgent(run))
    async with hub:
        task_id = (await hub.tasks.submit("x")).id
        paused = await hub.tasks.wait(task_id, timeout=10)
    assert steps == ["s0", "paused at s1"]
    assert paused.state == "paused" and [i.data for i in paused.checkpoint] == [{"n": 0}, {"n": 1}]


# ---------------------------------------------------------------------- runs on the fake model
async def test_pause_at_a_step_boundary_then_resume_repeats_no_tool_call(tmp_path: Path) -> None:
    script = LLMScript(api_key="sk-local")
    script.tool_calls(shell("echo run >> calls.txt")).reply("all done")
    ch = RecordingChannel()
    async with FakeOpenAI(script) as llm, Hub(llm_settings(tmp_path, llm), channels={ch.name: ch}) as hub:
        task = await hub.tasks.submit("count once", conversation=CONV, owner=OWNER)
        events = hub.tasks.events(task.id)
        await next_event(events, "step", "model")
        await hub.tasks.pause(task.id, by=OWNER)  # the tool runs to its end: it is not interrupted
        paused = await hub.tasks.wait(task.id, timeout=10)
        assert paused.state == "paused" and paused.checkpoint[-1].kind == "tool_results"
        assert calls_made(tmp_path) == 1 and len(script.requests) == 1
        await hub.tasks.resume(task.id, by=OWNER)
        done = await hub.tasks.wait(task.id, timeout=10)
        sent = await ch.wait_sent(5)
        assert isinstance(hub.store, Store)
        await hub.store.run_write(lambda c: None)  # the usage rows were queued before
        models = await hub.store.run_read(lambda c: c.execute(select(USAGE.c.conversation_key)).scalars().all())
        assert models == [CONV.key] * 2  # the task's model calls count in its conversation
    assert done.state == "completed" and done.result == "all done"
    assert calls_made(tmp_path) == 1 and len(script.requests) == 2
    assert "user" not in [i.kind for i in done.checkpoint[1:]]  # the resumed run added no request
    script.assert_done()
    assert sent[-1].text == f"Task {task.id} is done:\n\nall done"
    assert [m.text for m in sent if m.edit_of][-1] == f"Task {task.id}: completed"


async def test_cancel_kills_the_running_command_and_tells_the_conversation(tmp_path: Path) -> None:
    mark = marker()
    script = LLMScript(api_key="sk-local")
    script.tool_calls(ScriptedCall("run_command", {"command": f"sleep {mark}"}))
    ch = RecordingChannel()
    async with FakeOpenAI(script) as llm, Hub(llm_settings(tmp_path, llm), channels={ch.name: ch}) as hub:
        task = await hub.tasks.submit("sleep a while", conversation=CONV, owner=OWNER)
        await until(lambda: bool(alive(mark)))
        cancelled = await hub.tasks.cancel(task.id, by=OWNER)
        assert cancelled.state == "cancelled" and cancelled.error == "cancelled by Ann"
        await until(lambda: not alive(mark))  # the process group was killed
        await until(lambda: any("was cancelled" in m.text for m in ch.sent))
    assert f"Task {task.id} was cancelled: cancelled by Ann." in ch.texts()
    script.assert_done()


async def test_retry_from_the_checkpoint_and_from_the_start(tmp_path: Path) -> None:
    script = LLMScript(api_key="sk-local")
    slow = ReplyStep(text="too late", first_token_delay=30)
    script.tool_calls(shell("echo run >> calls.txt")).add(slow)
    async with FakeOpenAI(script) as llm, Hub(llm_settings(tmp_path, llm)) as hub:
        tasks = hub.tasks
        task = await tasks.submit("count")
        events = tasks.events(task.id)
        await next_event(events, "step", "tool run_command")
        await until(lambda: len(script.requests) == 2)  # in the model call now
        assert (await tasks.cancel(task.id)).state == "cancelled"  # stops the model call in flight
        script.reply("resumed answer")
        done = await tasks.wait((await tasks.retry(task.id)).id, timeout=10)
        assert done.state == "completed" and done.result == "resumed answer"
        assert calls_made(tmp_path) == 1  # from the checkpoint: the tool call is not repeated

        second = await tasks.submit("count again")
        events = tasks.events(second.id)
        script.tool_calls(shell("echo run >> calls.txt")).add(slow)
        await next_event(events, "step", "tool run_command")
        await until(lambda: len(script.requests) == 5)
        await tasks.cancel(second.id)
        script.tool_calls(shell("echo run >> calls.txt")).reply("from scratch")
        again = await tasks.retry(second.id, from_start=True)
        assert again.checkpoint == ()
        done = await tasks.wait(second.id, timeout=10)
    assert done.state == "completed" and done.result == "from scratch" and done.attempts == 2
    assert calls_made(tmp_path) == 3  # from the start: the tool ran again
    script.assert_done()


async def test_an_approval_is_asked_in_the_origin_conversation_and_answered_by_the_owner(tmp_path: Path) -> None:
    script = LLMScript(api_key="sk-local")
    script.tool_calls(shell("echo run >> calls.txt")).reply("ran it")
    ch = RecordingChannel()
    async with FakeOpenAI(script) as llm, Hub(llm_settings(tmp_path, llm, risk="high"), channels={ch.name: ch}) as hub:
        task = await hub.tasks.submit("run it", conversation=CONV, owner=OWNER)
        await until(lambda: any(m.buttons for m in ch.sent))
        question = next(m for m in ch.sent if m.buttons)
        assert question.conversation == CONV
        await ch.say("", kind="button", button=question.buttons[0].id, user=OTHER.id)  # not theirs to answer
        await until(lambda: any("Only the person" in m.text for m in ch.sent))
        await ch.say("", kind="button", button=question.buttons[0].id, user=OWNER.id)
        done = await hub.tasks.wait(task.id, timeout=10)
    assert done.state == "completed" and done.result == "ran it"
    assert calls_made(tmp_path) == 1


async def test_a_model_that_fails_fails_the_task_and_retry_goes_on(tmp_path: Path) -> None:
    """Before, a provider failure ended the task "completed" with the apology as its result."""
    script = LLMScript(api_key="sk-local")
    script.error(401, message="bad key").reply("now it works")
    ch = RecordingChannel()
    async with FakeOpenAI(script) as llm, Hub(llm_settings(tmp_path, llm), channels={ch.name: ch}) as hub:
        task = await hub.tasks.submit("do it", conversation=CONV, owner=OWNER)
        failed = await hub.tasks.wait(task.id, timeout=10)
        assert failed.state == "failed" and failed.error is not None and "provider" in failed.error
        await until(lambda: any(f"Task {task.id} failed" in m.text for m in ch.sent))
        await hub.tasks.retry(task.id, by=OWNER)
        done = await settled(hub.tasks, task)
    assert done.state == "completed" and done.result == "now it works"
