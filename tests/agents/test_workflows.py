"""Workflow modes (agents/workflows/) through the openai / anthropic SDKs against the fakes."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from agents.commands import mode as mode_command
from agents.workflows import choose_mode
from agents.workflows._plans import ChainPlan, Plan, PlanInvalid, parse_plan
from hub.agent import PauseRequested
from hub.commands import CommandCall
from tests.agents.conftest import LLMVendor
from tests.agents.fake_run_context import FakeRunContext, approve_button, collect, deny_button, inbound
from tests.agents.workflow_helpers import Bench, CheckpointingContext, checklist, make_agent, plan_text
from tests.fakes.llm_script import ScriptedCall

TOOLS = frozenset({"echo", "inventory"})


def _ctx(mode: str, text: str = "do the thing") -> FakeRunContext:
    return FakeRunContext(inbound(text), settings={"mode": mode})


def _bodies(vendor: LLMVendor) -> list[str]:
    return [json.dumps(r.body) for r in vendor.script.requests]


# ------------------------------------------------------------------ choice and parsing
def test_mode_choice() -> None:
    assert choose_mode(None, None) == "react"
    assert choose_mode("auto", None) == "react"
    assert choose_mode("auto", "plan") == "plan"
    assert choose_mode("batch", "plan") == "batch"
    assert choose_mode("nonsense", None) == "react"
    assert choose_mode("plan", None, resuming=True) == "react"


def test_plan_parsing_strips_fences_and_names_errors() -> None:
    plan = parse_plan(plan_text({"steps": [{"id": "a", "tool": "echo"}]}, fenced=True), Plan, tools=TOOLS)
    assert plan.steps[0].on_error == "fail"
    with pytest.raises(PlanInvalid, match="unknown tool 'nope'"):
        parse_plan('{"steps": [{"id": "a", "tool": "nope"}]}', Plan, tools=TOOLS)
    with pytest.raises(PlanInvalid, match="not an earlier step"):
        parse_plan(
            '{"steps": [{"id": "a", "tool": "echo", "arguments": {"text": {"$ref": "b.output"}}}]}', Plan, tools=TOOLS
        )
    with pytest.raises(PlanInvalid, match="on_error"):
        parse_plan('{"steps": [{"id": "a", "tool": "echo", "on_error": "retry(forever)"}]}', Plan, tools=TOOLS)
    with pytest.raises(PlanInvalid, match="not an earlier step"):
        parse_plan('{"steps": [{"name": "a", "tool": "echo", "arguments": {"text": "{{b}}"}}]}', ChainPlan, tools=TOOLS)
    with pytest.raises(PlanInvalid):
        parse_plan("no json here", Plan, tools=TOOLS)


# ------------------------------------------------------------------ batch
async def test_batch_runs_independent_calls_at_once_bounded(llm_openai: LLMVendor, tmp_path: Path) -> None:
    bench = Bench()
    agent = make_agent(llm_openai.provider(), tmp_path, bench)
    calls = [{"tool": "slow", "arguments": {"key": str(i)}} for i in range(6)]
    llm_openai.script.reply(plan_text({"calls": calls})).reply("All six fetched.")
    ctx = _ctx("batch")
    out = await collect(agent, ctx)
    llm_openai.script.assert_done()
    assert out[-1].final and out[-1].text == "All six fetched."
    assert bench.most == 4 and len(bench.calls) == 6  # concurrent, at most four at once
    planning, answering = llm_openai.script.requests
    assert planning.body.get("stream") is not True and "tools" not in planning.body
    assert "slow" in json.dumps(planning.body["messages"])  # the catalogue is in the instruction
    assert json.dumps(answering.body["messages"]).count("record ") == 6
    first, edits = checklist(ctx.sent)
    assert first.text.count("☐") == 6 and edits[-1].text.count("☑") == 6
    assert [i.kind for i in ctx.remembered] == ["user", "assistant", "tool_results", "assistant"]


# ------------------------------------------------------------------ chain
async def test_chain_passes_an_output_on_by_name(llm_vendor: LLMVendor, tmp_path: Path) -> None:
    bench = Bench()
    agent = make_agent(llm_vendor.provider(), tmp_path, bench)
    steps = [
        {"name": "first", "tool": "echo", "arguments": {"text": "hello"}},
        {"name": "second", "tool": "echo", "arguments": {"text": "{{first}} and more"}},
    ]
    llm_vendor.script.reply(plan_text({"steps": steps})).reply("Done: echoed twice.")
    ctx = _ctx("chain")
    out = await collect(agent, ctx)
    llm_vendor.script.assert_done()
    assert bench.calls == [("echo", {"text": "hello"}), ("echo", {"text": "echo: hello and more"})]
    assert out[-1].text == "Done: echoed twice."
    _, edits = checklist(ctx.sent)
    assert edits[-1].text.count("☑") == 2


# ------------------------------------------------------------------ plan
async def test_plan_with_a_ref_and_a_condition(llm_vendor: LLMVendor, tmp_path: Path) -> None:
    bench = Bench()
    agent = make_agent(llm_vendor.provider(), tmp_path, bench)
    plan = {
        "steps": [
            {"id": "look", "tool": "inventory", "arguments": {"query": "all"}},
            {"id": "say", "tool": "echo", "arguments": {"text": {"$ref": "look.output.items.0.name"}}},
            {
                "id": "none",
                "tool": "echo",
                "arguments": {"text": "nothing in stock"},
                "when": {"$ref": "look.output.count", "op": "equals", "value": 0},
            },
            {
                "id": "some",
                "tool": "echo",
                "arguments": {"text": "in stock"},
                "when": {"$ref": "look.output.items", "op": "truthy"},
            },
        ]
    }
    llm_vendor.script.reply(plan_text(plan, fenced=True)).reply("The first item is a widget.")
    ctx = _ctx("plan")
    out = await collect(agent, ctx)
    llm_vendor.script.assert_done()
    assert bench.calls == [
        ("inventory", {"query": "all"}),
        ("echo", {"text": "widget"}),
        ("echo", {"text": "in stock"}),
    ]
    assert out[-1].text == "The first item is a widget."
    first, edits = checklist(ctx.sent)
    assert first.text.startswith("Plan (4 steps):") and first.text.count("☐") == 4
    assert len(edits) == 4  # one edit as each step finishes
    final = edits[-1].text
    assert final.count("☑") == 3 and "↷ 3." in final and "condition not met" in final


async def test_plan_retry_then_success(llm_openai: LLMVendor, tmp_path: Path) -> None:
    bench = Bench(flaky_failures=2)
    agent = make_agent(llm_openai.provider(), tmp_path, bench)
    plan = {"steps": [{"id": "a", "tool": "flaky", "arguments": {"text": "x"}, "on_error": "retry(2)"}]}
    llm_openai.script.reply(plan_text(plan)).reply("It worked on the third try.")
    ctx = _ctx("plan")
    out = await collect(agent, ctx)
    llm_openai.script.assert_done()
    assert bench.names() == ["flaky", "flaky", "flaky"]
    assert out[-1].text == "It worked on the third try."
    assert "☑ 1." in checklist(ctx.sent)[1][-1].text


async def test_plan_skip_goes_on_with_null(llm_openai: LLMVendor, tmp_path: Path) -> None:
    bench = Bench(flaky_failures=5)
    agent = make_agent(llm_openai.provider(), tmp_path, bench)
    plan = {
        "steps": [
            {"id": "a", "tool": "flaky", "arguments": {"text": "x"}, "on_error": "skip"},
            {"id": "b", "tool": "echo", "arguments": {"text": "after"}, "when": {"$ref": "a.output", "op": "falsy"}},
        ]
    }
    llm_openai.script.reply(plan_text(plan)).reply("The first step was skipped.")
    ctx = _ctx("plan")
    await collect(agent, ctx)
    llm_openai.script.assert_done()
    assert bench.names() == ["flaky", "echo"]  # no retry; the skipped step's output is null
    final = checklist(ctx.sent)[1][-1].text
    assert "↷ 1." in final and "busy" in final and "☑ 2." in final


async def test_plan_fail_replans_once(llm_openai: LLMVendor, tmp_path: Path) -> None:
    bench = Bench(flaky_failures=5)
    agent = make_agent(llm_openai.provider(), tmp_path, bench)
    first = {
        "steps": [
            {"id": "look", "tool": "inventory", "arguments": {"query": "q"}},
            {"id": "a", "tool": "flaky", "arguments": {"text": "x"}, "on_error": "fail"},
            {"id": "never", "tool": "echo", "arguments": {"text": "never runs"}},
        ]
    }
    second = {"steps": [{"id": "b", "tool": "echo", "arguments": {"text": {"$ref": "look.output.items.1.name"}}}]}
    llm_openai.script.reply(plan_text(first)).reply(plan_text(second)).reply("Recovered.")
    ctx = _ctx("plan")
    out = await collect(agent, ctx)
    llm_openai.script.assert_done()
    assert bench.calls[-1] == ("echo", {"text": "gadget"}) and bench.names() == ["inventory", "flaky", "echo"]
    replan = json.dumps(llm_openai.script.requests[1].body["messages"])
    assert "failed" in replan and "busy" in replan and "widget" in replan
    assert out[-1].text == "Recovered."
    final = checklist(ctx.sent)[1][-1].text
    assert "revised" in final and "✗ 2." in final and "☑ 3." in final and "never runs" not in final


async def test_plan_failing_after_its_replan_stops(llm_openai: LLMVendor, tmp_path: Path) -> None:
    bench = Bench(flaky_failures=5)
    agent = make_agent(llm_openai.provider(), tmp_path, bench)
    failing = {"steps": [{"id": "a", "tool": "flaky", "arguments": {"text": "x"}}]}
    again = {"steps": [{"id": "b", "tool": "flaky", "arguments": {"text": "y"}}]}
    llm_openai.script.reply(plan_text(failing)).reply(plan_text(again)).reply("Sorry, the service is busy.")
    ctx = _ctx("plan")
    out = await collect(agent, ctx)
    llm_openai.script.assert_done()  # one replan only
    assert bench.names() == ["flaky", "flaky"] and out[-1].text == "Sorry, the service is busy."
    assert "Stopped" in checklist(ctx.sent)[1][-1].text


async def test_invalid_plan_is_repaired_once(llm_openai: LLMVendor, tmp_path: Path) -> None:
    bench = Bench()
    agent = make_agent(llm_openai.provider(), tmp_path, bench)
    bad = {"steps": [{"id": "a", "tool": "teleport", "arguments": {}}]}
    good = {"steps": [{"id": "a", "tool": "echo", "arguments": {"text": "hi"}}]}
    llm_openai.script.reply(plan_text(bad)).reply(plan_text(good)).reply("Said hi.")
    out = await collect(agent, _ctx("plan"))
    llm_openai.script.assert_done()
    repair = json.dumps(llm_openai.script.requests[1].body["messages"])
    assert "not valid" in repair and "teleport" in repair
    assert bench.names() == ["echo"] and out[-1].text == "Said hi."


async def test_invalid_plan_twice_falls_back_to_react(llm_openai: LLMVendor, tmp_path: Path) -> None:
    bench = Bench()
    agent = make_agent(llm_openai.provider(), tmp_path, bench)
    script = llm_openai.script
    script.reply("I would rather just do it.").reply('{"steps": []}')
    script.tool_calls(ScriptedCall("echo", {"text": "react"}, id="c1")).reply("Done the react way.")
    out = await collect(agent, _ctx("plan"))
    script.assert_done()
    assert bench.calls == [("echo", {"text": "react"})] and out[-1].text == "Done the react way."
    assert "tools" in script.requests[2].body  # react offers the tools


@pytest.mark.parametrize("approve", [True, False])
async def test_approval_inside_a_plan_step(llm_openai: LLMVendor, tmp_path: Path, approve: bool) -> None:
    bench = Bench()
    agent = make_agent(llm_openai.provider(), tmp_path, bench)
    plan = {
        "steps": [
            {"id": "ship", "tool": "deploy", "arguments": {"target": "prod"}, "on_error": "skip"},
            {"id": "tell", "tool": "echo", "arguments": {"text": "after deploy"}},
        ]
    }
    llm_openai.script.reply(plan_text(plan)).reply("Finished.")
    ctx = _ctx("plan")
    answer = approve_button if approve else deny_button
    run = asyncio.create_task(collect(agent, ctx))
    await asyncio.wait_for(ctx.answer_when_asked(answer), 10)
    out = await asyncio.wait_for(run, 20)
    llm_openai.script.assert_done()
    assert "deploy" in ctx.asked[0].text and "prod" in ctx.asked[0].text
    assert bench.names() == (["deploy", "echo"] if approve else ["echo"])  # denied: not run, not retried
    final = checklist(ctx.sent)[1][-1].text
    assert ("☑ 1." if approve else "↷ 1.") in final
    assert out[-1].text == "Finished."
    if not approve:
        assert "denied" in json.dumps(llm_openai.script.requests[-1].body["messages"])


# ------------------------------------------------------------------ checkpoints, /mode
async def test_steps_are_checkpointed_and_pause_propagates(llm_openai: LLMVendor, tmp_path: Path) -> None:
    bench = Bench()
    agent = make_agent(llm_openai.provider(), tmp_path, bench)
    plan = {
        "steps": [
            {"id": "a", "tool": "echo", "arguments": {"text": "1"}},
            {"id": "b", "tool": "echo", "arguments": {"text": "2"}},
        ]
    }
    llm_openai.script.reply(plan_text(plan))
    ctx = CheckpointingContext(inbound("go"), settings={"mode": "plan"}, pause_at="tool echo")
    with pytest.raises(PauseRequested):
        await collect(agent, ctx)
    llm_openai.script.assert_done()
    assert bench.names() == ["echo"]  # paused after the first step's result
    assert [label for label, _ in ctx.steps] == ["plan", "plan step 1/2", "tool echo"]
    assert ctx.steps[-1][1] == 3  # the request, the call, its result


async def test_a_resumed_run_goes_on_from_its_history(llm_openai: LLMVendor, tmp_path: Path) -> None:
    bench = Bench()
    agent = make_agent(llm_openai.provider(), tmp_path, bench)
    earlier = CheckpointingContext(inbound("go"), settings={"mode": "plan"}, pause_at="tool echo")
    llm_openai.script.reply(plan_text({"steps": [{"id": "a", "tool": "echo", "arguments": {"text": "1"}}]}))
    with pytest.raises(PauseRequested):
        await collect(agent, earlier)
    llm_openai.script.reply("Resumed and done.")
    ctx = CheckpointingContext(history=earlier.new_history, settings={"mode": "plan"}, resuming=True)
    out = await collect(agent, ctx)
    llm_openai.script.assert_done()
    assert out[-1].text == "Resumed and done." and bench.names() == ["echo"]  # nothing repeated
    assert [i.kind for i in ctx.remembered] == ["assistant"]  # no new user message
    assert "echo: 1" in json.dumps(llm_openai.script.requests[-1].body["messages"])


class _Session:
    def __init__(self) -> None:
        self.settings: dict[str, str] = {}

    async def set_setting(self, key: str, value: str | None) -> None:
        if value is None:
            self.settings.pop(key, None)
        else:
            self.settings[key] = value

    async def reset(self) -> None: ...

    def stop_run(self) -> bool:
        return False

    def status(self) -> str:
        return ""


async def test_mode_command_shows_and_sets_the_setting() -> None:
    session = _Session()

    async def call(args: str) -> str | None:
        return await mode_command(CommandCall(inbound=inbound("/mode"), args=args, session=session))

    assert "Mode: auto" in (await call("") or "")
    assert "plan" in (await call("Plan") or "") and session.settings == {"mode": "plan"}
    assert "Mode: plan" in (await call("") or "")
    assert "no mode 'fast'" in (await call("fast") or "") and session.settings == {"mode": "plan"}
    await call("auto")
    assert session.settings == {}
