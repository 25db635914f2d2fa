"""The agentic loop against the scripted provider and a fake run context."""

from __future__ import annotations

import asyncio
import json
import re
from datetime import UTC, datetime
from typing import Any

import pytest

from agents import history
from agents.config import AgentConfig
from agents.providers.base import AssistantMessage, ToolResult, ToolResultsMessage, UserMessage
from agents.runtime import LLMAgent, ResolvedModel
from agents.tools.base import Risk, Tool, ToolContext, ToolRegistry
from hub.agent import Usage
from hub.errors import ToolDenied, ToolFailed
from tests.agents.fake_run_context import FakeRunContext, collect, inbound
from tests.agents.scripted import ScriptedProvider, call

NOW = datetime(2026, 11, 21, 8, 30, tzinfo=UTC)


def make_tool(name: str, fn: Any, *, risk: Risk = Risk.LOW, category: str = "test", timeout: float = 5.0) -> Tool:
    return Tool(
        name=name,
        description=f"{name} tool",
        parameters={"type": "object", "properties": {}},
        invoke=fn,
        category=category,
        risk=risk,
        timeout_seconds=timeout,
    )


async def _add(args: dict[str, Any], ctx: ToolContext) -> str:
    return str(args["a"] + args["b"])


def make_agent(provider: ScriptedProvider, *tools: Tool, **cfg: Any) -> LLMAgent:
    registry = ToolRegistry()
    registry.extend(tools or [make_tool("add", _add, category="math")])
    config = AgentConfig.model_validate({"stream_min_chars": 1, **cfg})
    return LLMAgent(lambda setting: ResolvedModel(provider, None, None), registry, config, clock=lambda: NOW)


async def test_plain_answer_is_streamed_then_finished_on_one_stream() -> None:
    provider = ScriptedProvider().reply("Hello there, I am streaming this answer.", chunks=4)
    ctx = FakeRunContext(inbound("hello"), settings={"tz": "Europe/Berlin"})
    out = await collect(make_agent(provider), ctx)

    assert out[0].typing and not out[0].final
    partials, final = out[1:-1], out[-1]
    assert len(partials) == 4 and all(not p.final for p in partials)
    assert [len(p.text) for p in partials] == sorted(len(p.text) for p in partials)  # cumulative
    assert final.final and final.text == "Hello there, I am streaming this answer."
    assert {p.stream for p in partials} == {final.stream} and final.stream
    assert final.reply_to_platform_id == "p7" and final.inbound_id == 7
    provider.assert_done()
    request = provider.requests[0]
    assert "AutoHands" in request.system and "2026" not in request.system
    assert request.messages[-1] == UserMessage(text="[sent 2026-11-21 09:30 (Sat) Europe/Berlin]\nhello")
    assert [i.kind for i in ctx.remembered] == ["user", "assistant"]
    assert ctx.usage == [("scripted", "scripted-model", Usage(input_tokens=100, output_tokens=20))]


async def test_partials_are_coalesced() -> None:
    provider = ScriptedProvider().reply("x" * 100, chunks=100)
    agent = make_agent(provider, stream_min_chars=30, stream_interval_seconds=60)
    out = await collect(agent, FakeRunContext())
    partials = [o for o in out if not o.final and not o.typing]
    assert [len(p.text) for p in partials] == [30, 60, 90]
    assert out[-1].text == "x" * 100


async def test_a_short_quick_answer_is_one_message_without_partials() -> None:
    provider = ScriptedProvider().reply("Short and quick.", chunks=5)
    out = await collect(make_agent(provider, stream_min_chars=120, stream_interval_seconds=1), FakeRunContext())
    assert [(o.text, o.final) for o in out if not o.typing] == [("Short and quick.", True)]


async def test_non_streaming_mode_yields_only_the_final() -> None:
    provider = ScriptedProvider().reply("Plain.")
    out = await collect(make_agent(provider, stream=False), FakeRunContext())
    assert [o.text for o in out if not o.typing] == ["Plain."]


async def test_two_step_tool_run() -> None:
    provider = ScriptedProvider().tool_calls(call("add", {"a": 1, "b": 2}, id="c1")).reply("It is 3.")
    ctx = FakeRunContext(inbound("what is 1+2?"))
    out = await collect(make_agent(provider), ctx)

    assert out[-1].text == "It is 3." and out[-1].final
    assert sum(1 for o in out if o.final) == 1
    second = provider.requests[1]
    assert second.messages[-1] == ToolResultsMessage(results=(ToolResult(call_id="c1", name="add", content="3"),))
    assert [t.name for t in second.tools] == ["add"]
    assert [i.kind for i in ctx.remembered] == ["user", "assistant", "tool_results", "assistant"]
    decoded = history.decode(ctx.new_history)
    assert decoded == [*provider.requests[1].messages, decoded[-1]]
    provider.assert_done()


async def test_text_before_tool_calls_is_finished_as_its_own_message() -> None:
    provider = ScriptedProvider().tool_calls(call("add", {"a": 2, "b": 2}), text="Let me compute.").reply("4.")
    out = await collect(make_agent(provider), FakeRunContext())
    finals = [o for o in out if o.final]
    assert [f.text for f in finals] == ["Let me compute.", "4."]
    assert finals[0].stream != finals[1].stream


async def test_two_calls_of_one_turn_run_concurrently() -> None:
    started = {"a": asyncio.Event(), "b": asyncio.Event()}

    def waiter(me: str, other: str) -> Any:
        async def run(args: dict[str, Any], ctx: ToolContext) -> str:
            started[me].set()
            await asyncio.wait_for(started[other].wait(), 5)  # only returns if both are running at once
            return f"{me} done"

        return run

    provider = ScriptedProvider().tool_calls(call("ta", {}, id="1"), call("tb", {}, id="2")).reply("both done")
    agent = make_agent(provider, make_tool("ta", waiter("a", "b")), make_tool("tb", waiter("b", "a")))
    out = await collect(agent, FakeRunContext())
    results = provider.requests[1].messages[-1]
    assert isinstance(results, ToolResultsMessage)
    assert [(r.call_id, r.content, r.is_error) for r in results.results] == [
        ("1", "a done", False),
        ("2", "b done", False),
    ]
    assert out[-1].text == "both done"


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [('{"a": 1', "not valid JSON"), ("[1, 2]", "must be a JSON object")],
)
async def test_malformed_arguments_go_back_to_the_model(arguments: str, expected: str) -> None:
    provider = ScriptedProvider().tool_calls(call("add", arguments, id="c1")).reply("Sorry, that failed.")
    out = await collect(make_agent(provider), FakeRunContext())
    results = provider.requests[1].messages[-1]
    assert isinstance(results, ToolResultsMessage)
    assert results.results[0].is_error and expected in results.results[0].content
    assert out[-1].text == "Sorry, that failed."


async def test_unknown_tool_failures_and_bugs_become_error_results() -> None:
    async def failing(args: dict[str, Any], ctx: ToolContext) -> str:
        raise ToolFailed("disk full")

    async def refusing(args: dict[str, Any], ctx: ToolContext) -> str:
        raise ToolDenied("outside the workspace")

    async def buggy(args: dict[str, Any], ctx: ToolContext) -> str:
        raise KeyError("oops")

    async def slow(args: dict[str, Any], ctx: ToolContext) -> str:
        await asyncio.Event().wait()
        return "never"

    provider = (
        ScriptedProvider()
        .tool_calls(
            call("nope", {}, id="1"),
            call("failing", id="2"),
            call("refusing", id="3"),
            call("buggy", id="4"),
            call("slow", id="5"),
        )
        .reply("done")
    )
    agent = make_agent(
        provider,
        make_tool("failing", failing),
        make_tool("refusing", refusing),
        make_tool("buggy", buggy),
        make_tool("slow", slow, timeout=0.05),
    )
    out = await collect(agent, FakeRunContext())
    results = provider.requests[1].messages[-1]
    assert isinstance(results, ToolResultsMessage)
    contents = [r.content for r in results.results]
    assert all(r.is_error for r in results.results)
    assert "unknown tool 'nope'" in contents[0] and "failing" in contents[0]
    assert contents[1] == "disk full"
    assert contents[2] == "denied: outside the workspace"
    assert "KeyError" in contents[3]
    assert "timed out after 0.05 s" in contents[4]
    assert out[-1].text == "done"


async def test_long_tool_results_are_cut() -> None:
    async def big(args: dict[str, Any], ctx: ToolContext) -> str:
        return "y" * 5000

    provider = ScriptedProvider().tool_calls(call("big", id="1")).reply("ok")
    await collect(make_agent(provider, make_tool("big", big), max_tool_result_chars=100), FakeRunContext())
    results = provider.requests[1].messages[-1]
    assert isinstance(results, ToolResultsMessage)
    content = results.results[0].content
    assert content.startswith("y" * 100) and "5000 characters" in content


async def test_max_turns_stops_with_a_note() -> None:
    provider = ScriptedProvider()
    for i in range(2):
        provider.tool_calls(call("add", {"a": i, "b": 1}, id=f"c{i}"))
    ctx = FakeRunContext()
    out = await collect(make_agent(provider, max_turns=2), ctx)
    assert "stopped after 2 steps" in out[-1].text and out[-1].final
    provider.assert_done()
    assert ctx.remembered[-1].kind == "assistant"
    assert history.decode(ctx.new_history)[-1] == AssistantMessage(text=out[-1].text)


async def test_run_timeout_while_the_model_hangs() -> None:
    provider = ScriptedProvider().reply("never", gate=asyncio.Event())
    out = await collect(make_agent(provider, timeout_seconds=0.2), FakeRunContext())
    assert "took longer than the 0.2 s limit" in out[-1].text and out[-1].final


async def test_run_timeout_while_a_tool_hangs() -> None:
    async def slow(args: dict[str, Any], ctx: ToolContext) -> str:
        await asyncio.Event().wait()
        return "never"

    provider = ScriptedProvider().tool_calls(call("slow", id="1"))
    out = await collect(
        make_agent(provider, make_tool("slow", slow, timeout=30), timeout_seconds=0.2), FakeRunContext()
    )
    assert "took longer than" in out[-1].text


async def test_timeout_after_partial_text_finishes_the_streamed_message() -> None:
    provider = ScriptedProvider().reply("Partial answer", chunks=2, gate=asyncio.Event(), gate_at=1)
    out = await collect(make_agent(provider, timeout_seconds=0.2), FakeRunContext())
    partials = [o for o in out if not o.final and not o.typing]
    assert [p.text for p in partials] == ["Partial"]
    assert out[-1].final and out[-1].stream == partials[0].stream
    assert out[-1].text.startswith("Partial\n\n") and "took longer than" in out[-1].text


async def test_cancellation_propagates_while_the_model_streams() -> None:
    step_gate = asyncio.Event()
    provider = ScriptedProvider().reply("never", gate=step_gate)
    ctx = FakeRunContext()
    task = asyncio.create_task(collect(make_agent(provider), ctx))
    await provider.steps[0].started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert [i.kind for i in ctx.remembered] == ["user"]


async def test_cancellation_propagates_while_tools_run() -> None:
    running = asyncio.Event()

    async def slow(args: dict[str, Any], ctx: ToolContext) -> str:
        running.set()
        await asyncio.Event().wait()
        return "never"

    provider = ScriptedProvider().tool_calls(call("slow", id="1"))
    task = asyncio.create_task(collect(make_agent(provider, make_tool("slow", slow, timeout=30)), FakeRunContext()))
    await running.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_provider_error_gives_one_clear_message_without_details() -> None:
    from agents.providers.errors import RateLimited

    provider = ScriptedProvider().fail(RateLimited("openai: HTTP 429: key sk-SECRET over quota", status=429))
    out = await collect(make_agent(provider), FakeRunContext())
    final = out[-1]
    assert final.final and "rate-limiting" in final.text and "incident" in final.text
    assert "sk-SECRET" not in final.text and "over quota" not in final.text and "(HTTP 429)" in final.text
    assert sum(1 for o in out if o.final) == 1


async def test_stream_broken_mid_answer_keeps_the_shown_text() -> None:
    from agents.providers.errors import StreamInterrupted

    provider = ScriptedProvider().reply(
        "Half an answer that breaks", chunks=4, error=StreamInterrupted("dropped"), fail_after_chunks=2
    )
    out = await collect(make_agent(provider), FakeRunContext())
    partials = [o for o in out if not o.final and not o.typing]
    final = out[-1]
    assert final.stream == partials[-1].stream
    assert final.text.startswith(partials[-1].text) and "broke off" in final.text
    assert "⚠️ The answer above is incomplete: " in final.text and "Sorry" not in final.text


async def test_model_choice_setting_reaches_the_resolver() -> None:
    provider = ScriptedProvider().reply("ok")
    seen: list[str | None] = []

    def resolve(setting: str | None) -> ResolvedModel:
        seen.append(setting)
        return ResolvedModel(provider, "other-model", 100_000)

    agent = LLMAgent(resolve, ToolRegistry(), AgentConfig(), clock=lambda: NOW)
    ctx = FakeRunContext(settings={"model": "alt/other-model"})
    await collect(agent, ctx)
    assert seen == ["alt/other-model"]
    assert provider.requests[0].model == "other-model" and provider.requests[0].tools == ()
    assert ctx.usage[0][1] == "other-model"


async def test_attachments_are_appended_to_the_user_turn() -> None:
    from hub.messages import Attachment

    provider = ScriptedProvider().reply("ok")
    msg = inbound(
        "see file",
        attachments=(
            Attachment(name="a.txt", mime_type="text/plain", text="A-content"),
            Attachment(name="b.png", mime_type="image/png", size=9),
        ),
    )
    await collect(make_agent(provider), FakeRunContext(msg))
    text = provider.requests[0].messages[-1]
    assert isinstance(text, UserMessage)
    assert '<attachment name="a.txt" type="text/plain">\nA-content\n</attachment>' in text.text
    assert "b.png (image/png, 9 bytes)" in text.text


async def test_history_is_decoded_into_the_request() -> None:
    prior = [
        history.encode(UserMessage(text="earlier")),
        history.encode(AssistantMessage(text="", tool_calls=(call("add", {}, id="x"),))),
    ]
    provider = ScriptedProvider().reply("ok")
    await collect(make_agent(provider), FakeRunContext(history=prior))
    messages = provider.requests[0].messages
    assert messages[0] == UserMessage(text="earlier")
    assert isinstance(messages[2], ToolResultsMessage) and messages[2].results[0].is_error  # repaired
    assert json.loads(messages[1].tool_calls[0].arguments) == {}  # type: ignore[union-attr]


async def test_a_slow_consumer_is_never_cancelled_by_the_run_clock() -> None:
    provider = ScriptedProvider().reply("late")
    agent = make_agent(provider, timeout_seconds=0.1, stream=False)
    seen = []
    async for out in agent.run(FakeRunContext()):
        seen.append(out)
        await asyncio.sleep(0.2)  # the consumer's own work, past the deadline: must not be cancelled
    assert "took longer than" in seen[-1].text
    assert provider.requests == []  # the deadline had passed before the model was called
    provider.steps.clear()


async def test_scheduled_job_prompt_is_marked() -> None:
    from hub.messages import JobInfo

    provider = ScriptedProvider().reply("Here is your digest.")
    job = JobInfo(job_id="j1", action="agent", due_at=NOW, description="daily digest")
    await collect(make_agent(provider), FakeRunContext(inbound("summarise the news", kind="job", job=job)))
    text = provider.requests[0].messages[-1]
    assert isinstance(text, UserMessage) and "[a scheduled task fired: daily digest]\nsummarise" in text.text


async def test_each_provider_failure_gets_its_own_incident_id() -> None:
    # Regression: the id was new_id()[:8], the per-process prefix: the same for every incident.
    from agents.providers.errors import ServerError

    provider = ScriptedProvider().fail(ServerError("boom", status=500)).fail(ServerError("boom", status=500))
    agent = make_agent(provider)
    texts = [(await collect(agent, FakeRunContext()))[-1].text for _ in range(2)]
    ids = [re.search(r"incident (\w+)", t) for t in texts]
    assert all(ids) and ids[0].group(1) != ids[1].group(1)  # type: ignore[union-attr]
