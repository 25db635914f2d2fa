"""The ``schedule`` tool driven by a scripted model inside a real Hub.

The model side is ``tests/agents/scripted.py`` (our ``Provider`` interface, scripted); the
vendor SDK paths are covered by the provider tests against the fake HTTP servers. Everything
after the model — the agent loop, the tool, the scheduler, store, sessions, outbox, channel —
is the real thing.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from agents.config import AgentConfig
from agents.runtime import LLMAgent, ResolvedModel, default_tool_context
from agents.tools.base import ToolContext, ToolRegistry
from agents.tools.config import ToolsConfig
from agents.tools.schedule import schedule, schedule_tools
from hub.agent import JobScheduler
from hub.app import Hub
from hub.errors import ToolFailed
from hub.messages import Inbound, Sender
from tests.agents.scripted import ScriptedProvider, call
from tests.hub.scheduler_support import ALICE, BOB, THREAD, RecordingChannel, ask, settings


class _HubServices:
    """``ToolContext.services`` (a ``ToolServices``, as ``AgentServices`` is one); the
    scheduler only exists once the hub has started, so it is looked up per call."""

    def __init__(self, hub: Hub) -> None:
        self._hub = hub

    @property
    def scheduler(self) -> JobScheduler | None:
        scheduler: JobScheduler | None = self._hub.scheduler
        return scheduler


def make_hub(tmp_path: Path, provider: ScriptedProvider, channel: RecordingChannel) -> Hub:
    registry = ToolRegistry()
    registry.extend(schedule_tools())
    agent = LLMAgent(
        lambda _setting: ResolvedModel(provider, None, 100_000),
        registry,
        AgentConfig.model_validate({"stream": False}),
    )
    hub = Hub(settings(tmp_path), agent=agent, channels={channel.name: channel})
    agent.tool_context = default_tool_context(tmp_path / "ws", None, _HubServices(hub))
    return hub


async def say(hub: Hub, channel: RecordingChannel, text: str, *, sender: Sender = ALICE, n: int = 1) -> list[str]:
    before = len(channel.sent)
    await hub.inbox(
        Inbound(
            kind="message",
            conversation=THREAD,
            sender=sender,
            text=text,
            platform_id=f"msg-{text}-{sender.id}",
        )
    )
    await channel.wait_for(lambda: len(channel.sent) >= before + n, within=5)
    return channel.texts()[before:]


async def approve_next_question(hub: Hub, channel: RecordingChannel, *, sender: Sender = ALICE) -> str:
    """Wait for the approval question, tap Approve as ``sender``; returns the question's text."""
    await channel.wait_for(lambda: any(o.buttons for o in channel.sent), within=5)
    question = next(o for o in channel.sent if o.buttons)
    approve = next(b.id for b in question.buttons if b.id.startswith("approve:"))
    await hub.inbox(
        Inbound(kind="button", conversation=THREAD, sender=sender, button=approve, platform_id=f"tap-{approve}")
    )
    return question.text


def tool_result(provider: ScriptedProvider, index: int) -> str:
    """The tool output the model saw in request ``index``."""
    last = provider.requests[index].messages[-1]
    results = getattr(last, "results", None)
    assert results, last
    return str(results[0].content if hasattr(results[0], "content") else results[0])


async def test_model_schedules_lists_and_cancels(tmp_path: Path) -> None:
    provider = (
        ScriptedProvider()
        .tool_calls(call("schedule", {"operation": "create", "when": "in 1 second", "text": "Time to stretch!"}))
        .reply("I'll remind you in a second.")
        .tool_calls(
            call(
                "schedule",
                {
                    "operation": "create",
                    "every": "weekday 9:00",
                    "text": "Summarise yesterday's thread",
                    "action": "agent",
                },
            )
        )
        .reply("Scheduled.")
        .tool_calls(call("schedule", {"operation": "list"}))
        .reply("You have one job.")
    )
    ch = RecordingChannel()
    async with make_hub(tmp_path, provider, ch) as hub:
        assert await say(hub, ch, "remind me in a second to stretch") == ["I'll remind you in a second."]
        created = json.loads(tool_result(provider, 1))
        assert created["description"] == "Time to stretch!" and created["repeats"] is False
        # The job fires as a "send" job: delivered in the same thread, no model call.
        await ch.wait_for(lambda: "Time to stretch!" in ch.texts(THREAD), within=4)
        assert ch.sent[-1].conversation == THREAD

        # A job that repeats and runs the agent with nobody watching is asked about first.
        asking = asyncio.create_task(say(hub, ch, "every weekday at 9 summarise the thread", n=3))
        question = await approve_next_question(hub, ch)
        assert "repeats and runs the agent later" in question and "without asking: none" in question
        assert (await asking)[-1] == "Scheduled."
        weekly = json.loads(tool_result(provider, 3))
        assert weekly["repeats"] is True and weekly["action"] == "agent" and weekly["may_use"] == []
        assert await say(hub, ch, "what have I scheduled?") == ["You have one job."]
        listed = json.loads(tool_result(provider, 5))
        assert [j["id"] for j in listed] == [weekly["id"]]
        assert hub.scheduler is not None
        job = await hub.scheduler.get(weekly["id"])
        assert job is not None and job.creator.id == ALICE.id and job.conversation == THREAD

        provider.tool_calls(call("schedule", {"operation": "cancel", "job_id": weekly["id"]})).reply("No.")
        await say(hub, ch, "cancel Alice's job", sender=BOB)
        assert "only Alice or an admin can cancel" in tool_result(provider, 7)
        assert (still := await hub.scheduler.get(weekly["id"])) is not None and still.active

        provider.tool_calls(call("schedule", {"operation": "cancel", "job_id": weekly["id"]})).reply("Done.")
        await say(hub, ch, "cancel it")
        assert tool_result(provider, 9).startswith(f"cancelled job {weekly['id']}")
        assert "No scheduled jobs" in await ask(hub, ch, "jobs", conv=THREAD)
    provider.assert_done()


async def test_bad_arguments_become_tool_errors(tmp_path: Path) -> None:
    ch = RecordingChannel()
    async with make_hub(tmp_path, ScriptedProvider(), ch) as hub:
        ctx = ToolContext(
            conversation=THREAD,
            sender=ALICE,
            workspace=tmp_path,
            config=ToolsConfig(),
            services=_HubServices(hub),
        )
        for args, message in [
            ({"operation": "create", "text": "x"}, "exactly one of 'when'"),
            ({"operation": "create", "text": "x", "when": "whenever you like"}, "could not read a time"),
            ({"operation": "create", "when": "in 1h"}, "create needs text"),
            ({"operation": "create", "text": "x", "every": "fortnightly-ish"}, "could not read a schedule"),
            ({"operation": "cancel"}, "cancel needs job_id"),
            ({"operation": "cancel", "job_id": "abcdef"}, "no active job"),
            ({"operation": "explode"}, "operation"),
        ]:
            with pytest.raises(ToolFailed, match=message):
                await schedule.invoke(args, ctx)
        iso = json.loads(
            await schedule.invoke({"operation": "create", "text": "exact", "when": "2099-01-02T03:04:00+00:00"}, ctx)
        )
        assert iso["next_run_iso"].startswith("2099-01-02T03:04:00")
    no_scheduler = ToolContext(conversation=THREAD, sender=ALICE, workspace=tmp_path, config=ToolsConfig())
    with pytest.raises(ToolFailed, match="scheduling is not available"):
        await schedule.invoke({"operation": "list"}, no_scheduler)
