"""``/task`` and ``/tasks`` (hub/tasks/commands.py) through a real hub and its task service: the
id comes back at once, the result is posted in the same chat, the control forms, and another
user unable to see or control someone else's task (an admin may)."""

from __future__ import annotations

import asyncio
import itertools
import re
from collections.abc import AsyncIterator, Callable
from typing import Any

from hub.agent import Checkpointing, RunContext
from hub.messages import Outbound
from hub.tasks.commands import task_line
from tests.hub.conftest import FuncAgent, RecordingChannel, reply

_PIDS = itertools.count()
TASK_ID = re.compile(r"Task (\w+) is queued")


class Gate:
    """An agent whose task runs take one step, then wait for ``release`` before answering."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.stepped = asyncio.Event()

    async def run(self, ctx: RunContext) -> AsyncIterator[Outbound]:
        if isinstance(ctx, Checkpointing) and not ctx.resuming:
            self.stepped.set()
            await self.release.wait()
            await ctx.step([], label="waited")  # a pause asked meanwhile takes effect here
        yield reply(ctx, f"done: {ctx.inbound.text}")


async def said(ch: RecordingChannel, check: Callable[[str], bool], within: float = 10.0) -> str:
    """The first text ``ch`` was sent that passes ``check``, waiting for more as they come."""
    async with asyncio.timeout(within):
        while (found := next((m.text for m in ch.sent if check(m.text)), None)) is None:
            await ch.wait_sent(len(ch.sent) + 1, timeout=within)
    return found


async def command(ch: RecordingChannel, name: str, args: str = "", **kw: Any) -> str:
    """Send ``/name args`` and return the reply to it (the core's progress messages in the same
    chat are not replies to it)."""
    pid = f"cmd-{next(_PIDS)}"
    await ch.say(args, kind="command", command=name, pid=pid, **kw)
    async with asyncio.timeout(10):
        while (found := next((m.text for m in ch.sent if m.reply_to_platform_id == pid), None)) is None:
            await ch.wait_sent(len(ch.sent) + 1, timeout=10)
    return found


async def submit(ch: RecordingChannel, text: str, **kw: Any) -> str:
    answer = await command(ch, "task", text, **kw)
    found = TASK_ID.search(answer)
    assert found is not None, answer
    return found.group(1)


async def test_task_answers_with_its_id_and_posts_the_result_in_the_same_chat(make_hub: Any) -> None:
    ch = RecordingChannel()
    async with make_hub(FuncAgent(_echo), ch) as hub:
        task_id = await submit(ch, "count the stars", chat="c7")
        result = await said(ch, lambda t: t.endswith("\n\ndone: count the stars"))
        assert next(m for m in ch.sent if m.text == result).conversation.chat == "c7"
        task = await hub.tasks.wait(task_id, timeout=10)
        assert task.state == "completed" and task.owner.id == "u1"
        listing = await command(ch, "tasks", chat="c7")
        assert listing.splitlines()[0] == "Your tasks (newest first):"
        assert f"{task_id} — completed" in listing and "count the stars" in listing
        status = await command(ch, "task", f"status {task_id}", chat="c7")
        assert status.startswith(f"Task {task_id}: completed") and "Result: done: count the stars" in status


async def _echo(ctx: RunContext) -> AsyncIterator[Outbound]:
    yield reply(ctx, f"done: {ctx.inbound.text}")


async def test_control_forms_and_illegal_moves(make_hub: Any) -> None:
    ch, gate = RecordingChannel(), Gate()
    async with make_hub(FuncAgent(gate.run), ch) as hub:
        task_id = await submit(ch, "a long job")
        await asyncio.wait_for(gate.stepped.wait(), 10)
        assert await command(ch, "task", f"pause {task_id}") == f"Pausing task {task_id} (now running)."
        gate.release.set()
        assert (await hub.tasks.wait(task_id, timeout=10)).state == "paused"
        refused = await command(ch, "task", f"cancel {task_id}")
        assert refused.startswith(f"Sorry: task {task_id} is paused") and "resume it" in refused
        assert (await command(ch, "task", f"resume {task_id}")).startswith(f"Resumed task {task_id}")
        await said(ch, lambda t: t.endswith("\n\ndone: a long job"))
        assert (await hub.tasks.wait(task_id, timeout=10)).state == "completed"
        refused = await command(ch, "task", f"retry {task_id}")
        assert refused.startswith(f"Sorry: task {task_id} is completed")


async def test_cancel_then_retry(make_hub: Any) -> None:
    ch, gate = RecordingChannel(), Gate()
    async with make_hub(FuncAgent(gate.run), ch) as hub:
        task_id = await submit(ch, "something slow")
        await asyncio.wait_for(gate.stepped.wait(), 10)
        assert (await command(ch, "task", f"cancel {task_id}")).startswith(f"Cancelled task {task_id}")
        assert (await hub.tasks.wait(task_id, timeout=10)).state == "cancelled"
        gate.release.set()
        again = await command(ch, "task", f"retry {task_id} --from-start")
        assert again.startswith(f"Retrying task {task_id} from the start")
        assert (await hub.tasks.wait(task_id, timeout=10)).state == "completed"


async def test_another_user_cannot_see_or_control_my_task_but_an_admin_can(make_hub: Any) -> None:
    ch, gate = RecordingChannel(), Gate()
    async with make_hub(FuncAgent(gate.run), ch) as hub:
        task_id = await submit(ch, "my secret plan", user="alice", chat="a")
        await asyncio.wait_for(gate.stepped.wait(), 10)
        for verb in ("status", "cancel", "pause", "resume", "retry"):
            assert (
                await command(ch, "task", f"{verb} {task_id}", user="mallory", chat="m") == f"Sorry: no task {task_id}"
            )
        assert await command(ch, "tasks", user="mallory", chat="m") == (
            "You have no tasks. Start one with /task <what to do>."
        )
        assert (await hub.tasks.get(task_id)).state == "running"
        admin = await command(ch, "task", f"cancel {task_id}", user="root", chat="r", admin=True)
        assert admin.startswith(f"Cancelled task {task_id}")
        gate.release.set()
        assert (await hub.tasks.wait(task_id, timeout=10)).state == "cancelled"


async def test_usage_and_words_that_only_look_like_a_control_form(make_hub: Any) -> None:
    ch = RecordingChannel()
    async with make_hub(FuncAgent(_echo), ch):
        assert (await command(ch, "task")).startswith("Usage: /task <what to do>")
        # "status" followed by more than an id (and a flag) is a task to do, not a control form
        task_id = await submit(ch, "status report for the whole team")
        await said(ch, lambda t: t.endswith("\n\ndone: status report for the whole team"))
        assert task_id


def test_a_listing_line_shows_state_age_and_first_words() -> None:
    from datetime import timedelta

    from hub.messages import ConversationRef, Sender, utcnow
    from hub.tasks import Task

    now = utcnow()
    task = Task(
        id="t1",
        text="one two three four five six seven eight nine ten",
        conversation=ConversationRef(channel="rec", chat="c"),
        owner=Sender(id="u"),
        created_at=now - timedelta(minutes=5),
    )
    assert task_line(task, now) == "t1 — pending, 5 min ago — one two three four five six seven eight …"


async def test_the_same_user_id_on_another_channel_is_another_person(hub_settings: Any) -> None:
    """Platform ids are unique per platform only: user "u1" on one channel must not see or control
    the task of user "u1" on another (before, the owner was matched by id alone)."""
    from hub.app import Hub

    gate = Gate()
    alice, mallory = RecordingChannel("alpha"), RecordingChannel("beta")
    hub = Hub(hub_settings(), agent=FuncAgent(gate.run), channels={alice.name: alice, mallory.name: mallory})
    async with hub:
        task_id = await submit(alice, "private work")
        await asyncio.wait_for(gate.stepped.wait(), 10)
        assert await command(mallory, "task", f"cancel {task_id}") == f"Sorry: no task {task_id}"
        assert "no tasks" in await command(mallory, "tasks")
        assert (await hub.tasks.get(task_id)).state == "running"
        assert (await command(alice, "task", f"status {task_id}")).startswith(f"Task {task_id}: running")
        gate.release.set()
        assert (await hub.tasks.wait(task_id, timeout=10)).state == "completed"
