"""Approvals: high risk always asks, medium on request, low never; answers by button or text."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from agents.approvals import decide
from agents.providers.base import ToolResultsMessage
from agents.tools.base import Risk, ToolContext, needs_approval
from hub.messages import Sender
from tests.agents.fake_run_context import (
    FakeRunContext,
    approve_button,
    button,
    collect,
    deny_button,
    inbound,
)
from tests.agents.scripted import ScriptedProvider, call
from tests.agents.test_runtime import make_agent, make_tool

MALLORY = Sender(id="u2", name="Mallory")


class Counter:
    def __init__(self) -> None:
        self.runs = 0

    async def __call__(self, args: dict[str, Any], ctx: ToolContext) -> str:
        self.runs += 1
        return f"deleted {args['path']}"


def scenario(risk: Risk = Risk.HIGH, **cfg: Any) -> tuple[Any, ScriptedProvider, Counter]:
    tool = Counter()
    provider = ScriptedProvider().tool_calls(call("delete", {"path": "notes.txt"}, id="c1")).reply("Done.")
    return make_agent(provider, make_tool("delete", tool, risk=risk), **cfg), provider, tool


def tool_result(provider: ScriptedProvider) -> Any:
    results = provider.requests[1].messages[-1]
    assert isinstance(results, ToolResultsMessage)
    return results.results[0]


async def run_answering(agent: Any, ctx: FakeRunContext, *answers: Any) -> list[Any]:
    async def answer_all() -> None:
        for make in answers:
            await ctx.answer_when_asked(make)
            await asyncio.sleep(0)

    async with asyncio.TaskGroup() as tg:
        tg.create_task(answer_all())
        out = await collect(agent, ctx)
    return out


async def test_high_risk_call_approved_by_button() -> None:
    agent, provider, tool = scenario()
    ctx = FakeRunContext(inbound("delete my notes"))
    out = await run_answering(agent, ctx, approve_button)

    assert tool.runs == 1 and tool_result(provider).content == "deleted notes.txt"
    question = ctx.asked[0]
    assert "delete" in question.text and 'path: "notes.txt"' in question.text
    assert "yes or no" in question.text
    assert [b.label for b in question.buttons] == ["Approve", "Deny"]
    assert question.buttons[0].id.startswith("approve:") and question.buttons[1].id.startswith("deny:")
    assert question.reply_to_platform_id == "p7" and question.inbound_id == 7
    assert ctx.sent[0].edit_of == question.id and "Approved" in ctx.sent[0].text and not ctx.sent[0].buttons
    assert out[-1].text == "Done."


async def test_high_risk_call_denied_by_button() -> None:
    agent, provider, tool = scenario()
    ctx = FakeRunContext()
    await run_answering(agent, ctx, deny_button)
    result = tool_result(provider)
    assert tool.runs == 0 and result.is_error and "the user denied the call" in result.content
    assert "Not run" in ctx.sent[0].text


@pytest.mark.parametrize("text", ["yes", "Y", "OK.", "approve"])
async def test_approved_by_text(text: str) -> None:
    agent, _, tool = scenario()
    await run_answering(agent, FakeRunContext(), lambda q: inbound(text, id=8, platform_id="p8"))
    assert tool.runs == 1


@pytest.mark.parametrize("text", ["no", "N", "deny", "Nope.", "what is this?"])
async def test_denied_by_text(text: str) -> None:
    agent, provider, tool = scenario()
    await run_answering(agent, FakeRunContext(), lambda q: inbound(text, id=8, platform_id="p8"))
    assert tool.runs == 0 and tool_result(provider).is_error


async def test_a_typed_nope_denies_a_pending_approval_in_the_hub_at_once(tmp_path: Path) -> None:
    """Regression: the session manager kept its own yes/no words, without "nope", so a typed
    "nope" was queued behind the waiting run instead of answering it: the approval waited for
    its whole timeout, then "nope" started a new agent turn."""
    from hub.app import Hub
    from hub.config import load_settings
    from tests.hub.conftest import RecordingChannel

    agent, provider, tool = scenario(approval_timeout_seconds=60)
    settings = load_settings(environ={}, overrides={"hub": {"data_dir": str(tmp_path)}, "server": {"enabled": False}})
    ch = RecordingChannel()
    async with asyncio.timeout(10), Hub(settings, agent=agent, channels={"rec": ch}):
        await ch.say("delete my notes", pid="m1")
        await ch.wait_sent(1)
        assert ch.sent[0].buttons  # the question
        await ch.say("nope", pid="m2")
        await ch.wait_sent(3)  # the question settled, then the run's answer
    assert tool.runs == 0 and "the user denied the call" in tool_result(provider).content
    assert "Not run" in ch.sent[1].text and ch.sent[2].text == "Done."
    provider.assert_done()  # "nope" was not taken for a new message


async def test_no_answer_times_out_as_a_denial() -> None:
    agent, provider, tool = scenario(approval_timeout_seconds=0.05)
    ctx = FakeRunContext()
    out = await collect(agent, ctx)
    result = tool_result(provider)
    assert tool.runs == 0 and "no answer from the user within 0.05 s" in result.content
    assert out[-1].text == "Done."


async def test_answer_from_another_user_is_ignored() -> None:
    agent, provider, tool = scenario()
    ctx = FakeRunContext()
    await run_answering(
        agent,
        ctx,
        lambda q: button(approve_button(q).button or "", sender=MALLORY),  # ignored by ask
        lambda q: inbound("no", id=9, platform_id="p9"),  # the requester's own answer decides
    )
    assert tool.runs == 0 and "denied" in tool_result(provider).content


async def test_agent_double_checks_the_sender_of_the_answer() -> None:
    agent, provider, tool = scenario()
    ctx = FakeRunContext(strict=False)  # a session manager that forgot to filter
    await run_answering(agent, ctx, lambda q: button(approve_button(q).button or "", sender=MALLORY))
    assert tool.runs == 0 and "someone other than" in tool_result(provider).content


async def test_a_button_of_another_question_denies() -> None:
    agent, _, tool = scenario()
    await run_answering(agent, FakeRunContext(strict=False), lambda q: button("approve:someoneelse"))
    assert tool.runs == 0


async def test_low_risk_never_asks_and_medium_asks_only_when_configured() -> None:
    agent, _, tool = scenario(Risk.LOW)
    ctx = FakeRunContext()
    await collect(agent, ctx)
    assert tool.runs == 1 and ctx.asked == []

    agent, _, tool = scenario(Risk.MEDIUM)
    ctx = FakeRunContext()
    await collect(agent, ctx)
    assert tool.runs == 1 and ctx.asked == []

    agent, _, tool = scenario(Risk.MEDIUM, approve_medium=True)
    ctx = FakeRunContext()
    await run_answering(agent, ctx, approve_button)
    assert tool.runs == 1 and len(ctx.asked) == 1


async def test_two_risky_calls_ask_one_after_the_other() -> None:
    tool = Counter()
    provider = (
        ScriptedProvider()
        .tool_calls(call("delete", {"path": "a"}, id="1"), call("delete", {"path": "b"}, id="2"))
        .reply("ok")
    )
    agent = make_agent(provider, make_tool("delete", tool, risk=Risk.HIGH))
    ctx = FakeRunContext()
    await run_answering(agent, ctx, lambda q: inbound("yes"), lambda q: inbound("no"))
    results = provider.requests[1].messages[-1]
    assert isinstance(results, ToolResultsMessage)
    assert [r.is_error for r in results.results] == [False, True]
    assert '"a"' in ctx.asked[0].text and '"b"' in ctx.asked[1].text


async def test_waiting_for_approval_does_not_count_against_the_run_timeout() -> None:
    agent, _, tool = scenario(timeout_seconds=0.3)
    ctx = FakeRunContext()

    async def late_answer() -> None:
        await ctx.question.wait()
        await asyncio.sleep(0.5)  # the point of the test: longer than the run's own limit
        ctx.answer(approve_button(ctx.asked[0]))

    async with asyncio.TaskGroup() as tg:
        tg.create_task(late_answer())
        out = await collect(agent, ctx)
    assert tool.runs == 1 and out[-1].text == "Done."


def test_decide_and_needs_approval() -> None:
    assert needs_approval(Risk.HIGH, approve_medium=False)
    assert not needs_approval(Risk.MEDIUM, approve_medium=False)
    assert needs_approval(Risk.MEDIUM, approve_medium=True)
    assert not needs_approval(Risk.LOW, approve_medium=True)
    assert decide(None, approval_id="a", user_id="u1", timeout=5).reason == ("no answer from the user within 5 s")
    assert decide(button("approve:a"), approval_id="a", user_id="u1", timeout=5).approved
    assert not decide(button("deny:a"), approval_id="a", user_id="u1", timeout=5).approved
    assert not decide(button("approve:a", sender=MALLORY), approval_id="a", user_id="u1", timeout=5).approved


async def test_each_call_outcome_is_reported_once_for_the_tool_lines() -> None:
    from hub.errors import ToolDenied, ToolFailed

    async def refuses(args: dict[str, Any], ctx: ToolContext) -> str:
        raise ToolDenied("outside the workspace")

    async def breaks(args: dict[str, Any], ctx: ToolContext) -> str:
        raise ToolFailed("disk full")

    async def hangs(args: dict[str, Any], ctx: ToolContext) -> str:
        await asyncio.Event().wait()
        return ""

    provider = (
        ScriptedProvider()
        .tool_calls(
            call("jail", {"path": "/etc"}, id="c1"),
            call("disk", {}, id="c2"),
            call("slow", {}, id="c3"),
            call("gone", {}, id="c4"),
        )
        .reply("Done.")
    )
    tools = [make_tool("jail", refuses), make_tool("disk", breaks), make_tool("slow", hangs, timeout=0.01)]
    ctx = FakeRunContext(inbound("go"))
    await collect(make_agent(provider, *tools), ctx)
    lines = [o for o in ctx.sent if not o.final][-1].text.splitlines()  # the last has every line
    assert sorted(lines) == [
        "🔧 disk ✗ failed: disk full",
        "🔧 gone ✗ failed: no such tool",
        "🔧 jail /etc ✗ refused: outside the workspace",
        "🔧 slow ✗ failed: the tool timed out after 0.01 s",
    ]
