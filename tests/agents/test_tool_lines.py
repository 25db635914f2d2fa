"""Tool calls and refusals show in the conversation as one line each (``[agent] show_tool_calls``),
through the real openai SDK against the fake model; they stay out of the answer and the history."""

from __future__ import annotations

import asyncio
import itertools
import json
from pathlib import Path
from typing import Any

import pytest

from agents.approvals import ToolOutcome
from agents.build import build_agent
from agents.config import AgentConfig
from agents.providers.base import ToolCall
from agents.runtime import LLMAgent
from agents.tool_lines import ToolLines
from hub.agent import AgentServices
from hub.commands import CommandRegistry
from hub.messages import Outbound
from hub.tool_calls import call_line, call_summary
from tests.agents.conftest import LLMVendor
from tests.agents.fake_run_context import FakeRunContext, collect, deny_button, inbound
from tests.fakes.llm_script import ScriptedCall


def _agent(tmp_path: Path, vendor: LLMVendor, **agent: Any) -> LLMAgent:
    svc = AgentServices(
        agent_config={"provider": "main", **agent},
        providers_config={"main": vendor.section()},
        tools_config={"enabled": ["file", "math"], "workspace": str(tmp_path / "ws")},
        commands=CommandRegistry(),
        data_dir=tmp_path,
    )
    built = build_agent(svc, environ={})
    assert isinstance(built, LLMAgent)
    return built


def _lines(ctx: FakeRunContext) -> list[Outbound]:
    return [o for o in ctx.sent if not o.final and not o.typing]


async def _run(agent: LLMAgent, ctx: FakeRunContext) -> list[Outbound]:
    try:
        return await collect(agent, ctx)
    finally:
        await agent.aclose()


async def test_a_tool_call_shows_its_line(llm_openai: LLMVendor, tmp_path: Path) -> None:
    agent = _agent(tmp_path, llm_openai)
    llm_openai.script.tool_calls(ScriptedCall("calculate", {"expression": "6*7"}, id="c1")).reply("It is 42.")
    ctx = FakeRunContext(inbound("what is 6*7?"))
    out = await _run(agent, ctx)
    llm_openai.script.assert_done()

    (line,) = _lines(ctx)
    assert line.text == "🔧 calculate 6*7 ✓\n" and line.format == "plain" and line.stream
    assert line.reply_to_platform_id == ctx.inbound.reply_to_platform_id
    assert out[-1].final and out[-1].text == "It is 42."  # the answer carries no tool line
    remembered = json.dumps([i.data for i in ctx.remembered], ensure_ascii=False)
    assert "🔧" not in remembered and "🔧" not in json.dumps(llm_openai.script.requests[1].body, ensure_ascii=False)


async def test_a_refused_call_shows_its_refusal(llm_openai: LLMVendor, tmp_path: Path) -> None:
    agent = _agent(tmp_path, llm_openai)
    script = llm_openai.script
    script.tool_calls(
        ScriptedCall("calculate", {"expression": "1+1"}, id="c1"),
        ScriptedCall("delete_file", {"path": "notes.txt"}, id="c2"),
    ).reply("I did not delete it.")
    ctx = FakeRunContext(inbound("delete notes.txt"))
    denier = asyncio.create_task(ctx.answer_when_asked(deny_button))
    out = await _run(agent, ctx)
    await denier
    script.assert_done()

    lines = _lines(ctx)
    assert len({o.stream for o in lines}) == 1  # one progress message, edited where it can be
    assert all(b.text.startswith(a.text) for a, b in itertools.pairwise(lines))  # append-only
    assert lines[-1].text.splitlines() == [
        "🔧 delete_file notes.txt ✗ refused: the user denied the call",
        "🔧 calculate 1+1 ✓",
    ]
    assert out[-1].text == "I did not delete it."


async def test_refused_shows_only_refusals(llm_openai: LLMVendor, tmp_path: Path) -> None:
    agent = _agent(tmp_path, llm_openai, show_tool_calls="refused", approval_timeout_seconds=0.05)
    llm_openai.script.tool_calls(
        ScriptedCall("calculate", {"expression": "1+1"}, id="c1"),
        ScriptedCall("delete_file", {"path": "notes.txt"}, id="c2"),
    ).reply("Nothing deleted.")
    ctx = FakeRunContext(inbound("delete notes.txt"))
    await _run(agent, ctx)
    (line,) = _lines(ctx)
    assert line.text == "🔧 delete_file notes.txt ✗ refused: no answer from the user within 0.05 s\n"


async def test_off_shows_nothing(llm_openai: LLMVendor, tmp_path: Path) -> None:
    agent = _agent(tmp_path, llm_openai, show_tool_calls="off")
    llm_openai.script.tool_calls(
        ScriptedCall("calculate", {"expression": "6*7"}, id="c1"), ScriptedCall("nope", {}, id="c2")
    ).reply("42.")
    ctx = FakeRunContext(inbound("what is 6*7?"))
    out = await _run(agent, ctx)
    assert _lines(ctx) == [] and out[-1].text == "42."


async def test_failed_and_unknown_calls_say_so(llm_openai: LLMVendor, tmp_path: Path) -> None:
    agent = _agent(tmp_path, llm_openai)
    llm_openai.script.tool_calls(ScriptedCall("read_file", {"path": "missing.txt"}, id="c1")).tool_calls(
        ScriptedCall("nope", '{"x": 1', id="c2")
    ).reply("Done.")
    ctx = FakeRunContext(inbound("read missing.txt"))
    await _run(agent, ctx)
    lines = _lines(ctx)[-1].text.splitlines()
    assert lines[0].startswith("🔧 read_file missing.txt ✗ failed: ")
    assert lines[1] == "🔧 nope ✗ failed: no such tool"


def test_the_line_is_one_short_line() -> None:
    long = "echo " + "x" * 200 + "\nrm -rf /\x1b[2J"
    line = call_line("run_command", {"command": long}, "refused", "the user\ndenied it")
    assert "\n" not in line and "\x1b" not in line and len(line) < 200
    assert line.endswith("✗ refused: the user denied it")
    assert call_summary("web_fetch", '{"url": "https://h.example/a?api_key=s3cret"}') == (
        "🔧 web_fetch https://h.example/a?api_key=***"
    )
    assert call_summary("now", "") == "🔧 now" and call_summary("x", "[1]") == "🔧 x"
    assert call_line("calculate", {"expression": 7}, None) == "🔧 calculate 7"


@pytest.mark.parametrize("show", ["all", "refused"])
async def test_a_line_that_cannot_be_sent_does_not_fail_the_call(show: str) -> None:
    class Broken(FakeRunContext):
        async def send(self, outbound: Outbound) -> None:
            raise RuntimeError("bus closed")

    lines = ToolLines.for_run(Broken(), AgentConfig.model_validate({"show_tool_calls": show}))
    assert lines is not None
    await lines.report(ToolOutcome(ToolCall(id="c", name="rm", arguments="{}"), {}, "refused", "no"))


def test_a_bad_setting_names_the_key(tmp_path: Path) -> None:
    from hub.errors import ConfigError

    svc = AgentServices(
        agent_config={"show_tool_calls": "loud"},
        providers_config={},
        tools_config={},
        commands=CommandRegistry(),
        data_dir=tmp_path,
    )
    with pytest.raises(ConfigError, match=r"agent\.show_tool_calls"):
        build_agent(svc, environ={})
