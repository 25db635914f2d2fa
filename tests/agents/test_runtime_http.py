"""``build_agent`` end to end: the real openai / anthropic SDKs against the local fakes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from agents.build import build_agent
from agents.runtime import LLMAgent
from hub.agent import AgentServices
from hub.commands import CommandRegistry
from hub.default_agent import NO_PROVIDER_TEXT, NoProviderAgent
from hub.errors import ConfigError
from tests.agents.conftest import LLMVendor
from tests.agents.fake_run_context import FakeRunContext, collect, inbound
from tests.fakes.llm_script import ScriptedCall


def services(
    tmp_path: Path,
    *,
    agent: dict[str, Any],
    providers: dict[str, Any] | None = None,
    tools: dict[str, Any] | None = None,
) -> AgentServices:
    return AgentServices(
        agent_config=agent,
        providers_config=providers or {},
        tools_config=tools if tools is not None else {"enabled": ["math", "time"]},
        commands=CommandRegistry(),
        data_dir=tmp_path,
    )


def llm_agent(svc: AgentServices) -> LLMAgent:
    agent = build_agent(svc, environ={})
    assert isinstance(agent, LLMAgent)
    return agent


async def test_two_step_tool_run_through_the_sdk(llm_vendor: LLMVendor, tmp_path: Path) -> None:
    # stream_min_chars low enough that the 22-character answer is also shown as partials
    svc = services(
        tmp_path, agent={"provider": "main", "stream_min_chars": 5}, providers={"main": llm_vendor.section()}
    )
    agent = llm_agent(svc)
    script = llm_vendor.script
    script.tool_calls(ScriptedCall("calculate", {"expression": "6*7"}, id="call_1")).reply(
        "Six times seven is 42.", chunks=4
    )
    try:
        ctx = FakeRunContext(inbound("what is 6*7?"))
        out = await collect(agent, ctx)
    finally:
        await agent.aclose()

    script.assert_done()
    assert out[-1].final and out[-1].text == "Six times seven is 42."
    partials = [o for o in out if not o.final and not o.typing]
    assert partials and all(p.stream == out[-1].stream for p in partials)
    first, second = (r.body for r in script.requests)
    assert first["stream"] is True and {t.get("name") or t["function"]["name"] for t in first["tools"]} >= {
        "calculate",
        "stats",
        "now",
    }
    assert "42" in json.dumps(second["messages"])  # the tool's result went back to the model
    assert [i.kind for i in ctx.remembered] == ["user", "assistant", "tool_results", "assistant"]
    assert len(ctx.usage) == 2 and all(u.input_tokens > 0 for _, _, u in ctx.usage)
    assert "model" in svc.commands and "persona" in svc.commands


async def test_provider_failure_through_the_sdk_is_one_clear_message(llm_openai: LLMVendor, tmp_path: Path) -> None:
    section = llm_openai.section(max_retries=1)
    svc = services(tmp_path, agent={"provider": "main"}, providers={"main": section})
    agent = llm_agent(svc)
    llm_openai.script.error(500).error(500)
    try:
        out = await collect(agent, FakeRunContext())
    finally:
        await agent.aclose()
    assert out[-1].final and "the model provider failed on its side" in out[-1].text
    llm_openai.script.assert_done()


def test_unconfigured_and_auto_configured(tmp_path: Path) -> None:
    svc = services(tmp_path, agent={})
    assert isinstance(build_agent(svc, environ={}), NoProviderAgent)
    assert "model" in svc.commands
    agent = build_agent(services(tmp_path, agent={}), environ={"OPENAI_API_KEY": "sk-x"})
    assert isinstance(agent, LLMAgent)
    assert agent.resolve(None).provider.name == "openai"


async def test_unconfigured_agent_explains_how_to_configure(tmp_path: Path) -> None:
    agent = build_agent(services(tmp_path, agent={}), environ={})
    out = await collect(agent, FakeRunContext())
    assert [o.text for o in out] == [NO_PROVIDER_TEXT]
    assert "OPENAI_API_KEY" in NO_PROVIDER_TEXT and "[providers." in NO_PROVIDER_TEXT


@pytest.mark.parametrize(
    ("agent", "providers", "tools", "key"),
    [
        ({"max_turns": 0}, {}, None, "agent.max_turns"),
        ({"bogus": 1}, {}, None, "agent.bogus"),
        ({"provider": "nope"}, {}, None, "agent.provider"),
        ({"provider": "main"}, {"main": {"kind": "openai"}}, None, "providers.main.model"),
        ({"identity": {"taboos": "x"}}, {}, None, "agent.identity.taboos"),
        ({}, {}, {"enabled": ["nope"]}, "tools.enabled"),
    ],
)
def test_bad_config_names_the_key(
    tmp_path: Path, agent: dict[str, Any], providers: dict[str, Any], tools: dict[str, Any] | None, key: str
) -> None:
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        build_agent(services(tmp_path, agent=agent, providers=providers, tools=tools), environ={})


async def test_fallback_and_model_switch_through_the_pool(llm_openai: LLMVendor, tmp_path: Path) -> None:
    providers = {"main": llm_openai.section(max_retries=0), "backup": llm_openai.section(model="backup-model")}
    agent = llm_agent(services(tmp_path, agent={"provider": "main", "fallback": ["backup"]}, providers=providers))
    script = llm_openai.script
    script.error(500).reply("from backup").reply("switched")
    try:
        out = await collect(agent, FakeRunContext())
        assert out[-1].text == "from backup"
        switched = await collect(agent, FakeRunContext(settings={"model": "backup/other-model"}))
        assert switched[-1].text == "switched"
    finally:
        await agent.aclose()
    assert [r.body["model"] for r in script.requests] == ["openai-test-model", "backup-model", "other-model"]
    script.assert_done()


async def test_model_switch_to_a_broken_provider_is_explained(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    providers = {
        "main": {"kind": "openai", "model": "m", "api_key": "k", "base_url": "http://127.0.0.1:9"},
        "other": {"kind": "anthropic", "model": "c"},
    }
    agent = llm_agent(services(tmp_path, agent={"provider": "main"}, providers=providers))
    try:
        out = await collect(agent, FakeRunContext(settings={"model": "other/c2"}))
    finally:
        await agent.aclose()
    assert "cannot be used" in out[-1].text and "/model default" in out[-1].text
