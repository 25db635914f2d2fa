"""Intent analysis and the formatting step, through the openai SDK against the fake model."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from agents.approvals import ToolExecutor
from agents.config import AgentConfig
from agents.intent import MORE_TOOLS, Intent, ToolSet, analyse, format_answer, intent_prompt, parse_reply
from agents.providers.base import ModelRequest, ToolCall, ToolSpec, UserMessage
from agents.runtime import LLMAgent, ResolvedModel
from agents.tools.base import Tool, ToolContext, ToolRegistry
from agents.tools.builtin import builtin_tools
from agents.tools.config import ToolsConfig
from agents.tools.schedule import schedule_tools
from hub.agent import HistoryItem
from tests.agents.conftest import LLMVendor
from tests.agents.fake_run_context import CONV, USER, FakeRunContext, collect, inbound
from tests.fakes.llm_script import ScriptedCall

TIME_TOOLS = ["now", "convert_time"]


def builtin_registry() -> ToolRegistry:
    registry = ToolRegistry()
    registry.extend([*builtin_tools(ToolsConfig()), *schedule_tools()])
    return registry


def specs_of(registry: ToolRegistry) -> tuple[ToolSpec, ...]:
    return tuple(ToolSpec(name=t.name, description=t.description, parameters=t.parameters) for t in registry)


def intent_json(categories: list[str], *, mode: str = "react", form: str | None = None) -> str:
    return json.dumps({"intent": "the request", "categories": categories, "mode": mode, "form": form})


def tool_names(body: dict[str, Any]) -> list[str]:
    return [t["function"]["name"] for t in body.get("tools", [])]


async def main_call(llm: LLMVendor, toolset: ToolSet, text: str = "hi") -> None:
    """The main model request as the run builds it: the tool set's specs, read now."""
    await llm.provider().complete(ModelRequest(system="sys", messages=(UserMessage(text=text),), tools=toolset.specs))


async def test_chosen_categories_are_the_only_schemas_of_the_main_request(llm_openai: LLMVendor) -> None:
    llm_openai.script.reply(intent_json(["time"], mode="batch")).reply("It is 9:30.")
    registry = builtin_registry()
    ctx = FakeRunContext(inbound("what time is it in Tokyo?"))
    intent, toolset = await analyse(ctx, registry, specs_of(registry), llm_openai.provider(), None, intent="auto")
    await main_call(llm_openai, toolset)

    assert intent.categories == frozenset({"time"}) and intent.mode == "batch" and intent.form is None
    first, main = (r.body for r in llm_openai.script.requests)
    assert "tools" not in first  # the intent call offers no tools
    assert first["messages"][-1]["content"] == "what time is it in Tokyo?"
    assert "- time: the current date and time" in first["messages"][0]["content"]
    assert tool_names(main) == [*TIME_TOOLS, MORE_TOOLS]
    assert [u[0] for u in ctx.usage] == ["main"]  # the intent call's usage is recorded
    assert ctx.usage[0][2].input_tokens > 0
    llm_openai.script.assert_done()


async def test_no_category_offers_only_more_tools(llm_openai: LLMVendor) -> None:
    llm_openai.script.reply(intent_json([])).reply("Hello!")
    registry = builtin_registry()
    ctx = FakeRunContext()
    _, toolset = await analyse(ctx, registry, specs_of(registry), llm_openai.provider(), None, intent="auto")
    await main_call(llm_openai, toolset)
    assert tool_names(llm_openai.script.requests[1].body) == [MORE_TOOLS]


async def test_more_tools_widens_once_through_the_executor(llm_openai: LLMVendor, tmp_path: Path) -> None:
    llm_openai.script.reply(intent_json(["math"])).reply("first").reply("second").reply("third")
    registry = builtin_registry()
    ctx = FakeRunContext(inbound("how many files are here?"))
    _, toolset = await analyse(ctx, registry, specs_of(registry), llm_openai.provider(), None, intent="auto")
    await main_call(llm_openai, toolset)
    executor = ToolExecutor(
        toolset.registry,
        ctx=ctx,
        tool_context=ToolContext(conversation=CONV, sender=USER, workspace=tmp_path, config=ToolsConfig()),
    )
    [result] = await executor.run([ToolCall(id="c1", name=MORE_TOOLS, arguments="{}")])
    await main_call(llm_openai, toolset)
    [again] = await executor.run([ToolCall(id="c2", name=MORE_TOOLS, arguments="{}")])
    await main_call(llm_openai, toolset)

    bodies = [r.body for r in llm_openai.script.requests]
    assert tool_names(bodies[1]) == ["calculate", "stats", MORE_TOOLS]
    assert not result.is_error and "list_dir" in result.content
    assert tool_names(bodies[2]) == [t.name for t in registry]  # every tool, more_tools gone
    assert toolset.widened and "already" in again.content
    assert tool_names(bodies[3]) == tool_names(bodies[2])
    llm_openai.script.assert_done()


@pytest.mark.parametrize(
    "reply",
    [
        "You will need the file tools.",
        '{"categories": ["teleport"], "mode": "react"}',
        '{"categories": "file"}',
        '{"categories": [1, 2]}',
        "[]",
    ],
)
async def test_an_unusable_intent_reply_offers_every_tool(llm_openai: LLMVendor, reply: str) -> None:
    llm_openai.script.reply(reply).reply("ok")
    registry = builtin_registry()
    intent, toolset = await analyse(
        FakeRunContext(), registry, specs_of(registry), llm_openai.provider(), None, intent="auto"
    )
    await main_call(llm_openai, toolset)
    assert intent == Intent() and not toolset.narrowed and toolset.registry is registry
    assert tool_names(llm_openai.script.requests[1].body) == [t.name for t in registry]


async def test_a_failed_intent_call_offers_every_tool(llm_openai: LLMVendor) -> None:
    llm_openai.script.error(400)
    registry = builtin_registry()
    ctx = FakeRunContext()
    provider = llm_openai.provider(max_retries=0)
    intent, toolset = await analyse(ctx, registry, specs_of(registry), provider, None, intent="auto")
    assert intent == Intent() and toolset.specs == specs_of(registry) and ctx.usage == []


async def test_off_makes_no_call(llm_openai: LLMVendor) -> None:
    registry = builtin_registry()
    specs = specs_of(registry)
    intent, toolset = await analyse(FakeRunContext(), registry, specs, llm_openai.provider(), None)
    assert intent == Intent() and toolset.specs == specs and not toolset.narrowed
    assert llm_openai.script.requests == []


async def test_a_fenced_reply_amid_words_is_read_and_the_last_reply_gives_context(llm_openai: LLMVendor) -> None:
    reply = 'Sure!\n```json\n{"intent": "delete notes.txt", "categories": ["File"], "form": "none"}\n```\nDone.'
    llm_openai.script.reply(reply)
    registry = builtin_registry()
    earlier = [HistoryItem(kind="assistant", data={"text": "notes.txt says: buy milk", "tool_calls": []})]
    ctx = FakeRunContext(inbound("now delete it"), history=earlier)
    intent, toolset = await analyse(ctx, registry, specs_of(registry), llm_openai.provider(), "small", intent="auto")
    assert intent == Intent(categories=frozenset({"file"}), mode=None, text="delete notes.txt", form=None)
    assert [s.name for s in toolset.specs] == ["read_file", "write_file", "list_dir", "delete_file", MORE_TOOLS]
    body = llm_openai.script.requests[0].body
    assert body["model"] == "small" and body["max_tokens"] <= 300
    assert "notes.txt says: buy milk" in body["messages"][-1]["content"]
    assert body["messages"][-1]["content"].endswith("now delete it")


def test_the_prompt_lists_every_category_byte_stably_with_extensions() -> None:
    async def noop(args: dict[str, Any], ctx: ToolContext) -> str:
        return ""

    def ext(name: str, category: str) -> Tool:
        return Tool(name=name, description="", parameters={"type": "object"}, invoke=noop, category=category)

    a, b = builtin_registry(), ToolRegistry()
    a.extend([ext("gh_issue", "github"), ext("jira_get", "jira")])
    a.describe("github", "issues and pull requests\n on GitHub")
    b.extend(reversed([*a]))
    b.describe("github", "issues and pull requests on GitHub")
    assert intent_prompt(a.categories()) == intent_prompt(b.categories())
    prompt = intent_prompt(a.categories())
    assert "- github: issues and pull requests on GitHub\n" in prompt
    assert "- jira: tools: jira_get\n" in prompt
    assert prompt.index("- file:") < prompt.index("- github:") < prompt.index("- time:")


def test_parse_reply_reads_forms_and_modes() -> None:
    known = {"file", "web"}
    got = parse_reply('{"categories": ["web"], "mode": "PLAN", "form": "a table"}', known)
    assert got == Intent(categories=frozenset({"web"}), mode="plan", form="a table")
    assert parse_reply('{"categories": [], "mode": "dance", "form": null}', known) == Intent(categories=frozenset())
    assert parse_reply('{"mode": "react"}', known) == Intent(categories=frozenset(), mode="react")


def test_covering_every_category_is_not_narrowed() -> None:
    registry = builtin_registry()
    toolset = ToolSet(registry, specs_of(registry), frozenset({t.category for t in registry}))
    assert not toolset.narrowed and toolset.specs == specs_of(registry) and toolset.registry is registry


TABLE = "| city | temp |\n|---|---|\n| Oslo | 3 |"
RAW = "```\ncity,temp\nOslo,3\n```"


@pytest.mark.parametrize(
    ("form", "text", "outputs", "called"),
    [
        (None, RAW, ["city,temp\nOslo,3"], False),  # no form asked: as it is
        ("a table", RAW, [], True),  # no table yet
        ("a table", TABLE, [], False),
        ("JSON", '```json\n{"Oslo": 3}\n```', [], False),
        ("JSON", "Oslo has 3 degrees.", [], True),
        ("German", "Oslo hat 3 Grad.", ["city,temp\nOslo,3"], False),  # cannot tell: the model wrote it
        ("German", "city,temp\nOslo,3", ["city,temp\nOslo,3"], True),  # the tool's output repeated
    ],
)
async def test_formatting_runs_only_when_a_form_was_asked_and_is_missing(
    llm_openai: LLMVendor, form: str | None, text: str, outputs: list[str], called: bool
) -> None:
    if called:
        llm_openai.script.reply("| city | temp |\n|---|---|\n| Oslo | 3 |")
    ctx = FakeRunContext(inbound("temperatures please"))
    intent = Intent(categories=frozenset({"web"}), text="temperatures in Oslo", form=form)
    got = await format_answer(ctx, intent, text, llm_openai.provider(), None, tool_output=outputs)
    assert len(llm_openai.script.requests) == int(called) and len(ctx.usage) == int(called)
    if called:
        assert got.startswith("| city")
        prompt = llm_openai.script.requests[0].body["messages"][-1]["content"]
        assert f"The form asked for: {form}" in prompt and text in prompt
        assert "tools" not in llm_openai.script.requests[0].body
    else:
        assert got is text
    llm_openai.script.assert_done()


async def test_a_failed_formatting_call_keeps_the_answer(llm_openai: LLMVendor) -> None:
    llm_openai.script.error(400)
    intent = Intent(form="JSON")
    got = await format_answer(FakeRunContext(), intent, "Oslo: 3", llm_openai.provider(max_retries=0), None)
    assert got == "Oslo: 3"


def test_config_switch() -> None:
    assert AgentConfig().intent == "off" and AgentConfig().intent_model is None
    config = AgentConfig.model_validate({"intent": "auto", "intent_model": "openai/gpt-4o-mini"})
    assert config.intent == "auto" and config.intent_model == "openai/gpt-4o-mini"
    with pytest.raises(ValueError, match="intent"):
        AgentConfig.model_validate({"intent": "sometimes"})


# ----------------------------------------------------------------------------- through a run


def run_agent(llm: LLMVendor, **cfg: Any) -> LLMAgent:
    provider = llm.provider()
    config = AgentConfig.model_validate({"stream_min_chars": 1, "intent": "auto", **cfg})
    return LLMAgent(lambda setting: ResolvedModel(provider, None, None), builtin_registry(), config)


async def test_a_run_offers_the_chosen_tools_and_widens_once(llm_openai: LLMVendor) -> None:
    script = llm_openai.script
    script.reply(intent_json(["time"])).tool_calls(ScriptedCall(MORE_TOOLS, {}, id="w1"))
    script.tool_calls(ScriptedCall("calculate", {"expression": "6*7"}, id="c1")).reply("42.")
    ctx = FakeRunContext(inbound("what is six times seven?"))
    out = await collect(run_agent(llm_openai), ctx)

    assert out[-1].text == "42." and out[-1].final
    bodies = [r.body for r in script.requests]
    assert "tools" not in bodies[0]
    assert tool_names(bodies[1]) == [*TIME_TOOLS, MORE_TOOLS]
    every = [t.name for t in builtin_registry()]
    assert tool_names(bodies[2]) == every and tool_names(bodies[3]) == every
    assert bodies[3]["messages"][-1]["content"] == "42"  # calculate ran after the widening
    assert len(ctx.usage) == 4  # the intent call's usage too
    script.assert_done()


async def test_a_run_with_intent_off_makes_no_intent_call(llm_openai: LLMVendor) -> None:
    llm_openai.script.reply("Hello.")
    out = await collect(run_agent(llm_openai, intent="off"), FakeRunContext())
    assert out[-1].text == "Hello."
    [body] = [r.body for r in llm_openai.script.requests]
    assert tool_names(body) == [t.name for t in builtin_registry()]


async def test_a_run_formats_its_answer_only_when_a_form_was_asked(llm_openai: LLMVendor) -> None:
    script = llm_openai.script
    script.reply(intent_json(["math"], form="JSON")).reply("2 + 2 = 4.").reply('{"result": 4}')
    script.reply(intent_json(["math"])).reply("2 + 2 = 4.")
    asked = await collect(run_agent(llm_openai), FakeRunContext(inbound("2+2 as JSON")))
    plain = await collect(run_agent(llm_openai), FakeRunContext(inbound("2+2")))
    assert asked[-1].text == '{"result": 4}' and plain[-1].text == "2 + 2 = 4."
    assert len(script.requests) == 5
    script.assert_done()
