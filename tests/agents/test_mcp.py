"""MCP servers as tool sources (``agents/mcp``): real servers written with the SDK's ``MCPServer``
(``tests/fakes/mcp_servers``), over stdio and streamable HTTP, called by the scripted model
through a real ``LLMAgent`` run."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from agents.build import build_agent
from agents.config import AgentConfig
from agents.mcp import McpConfig, McpServers
from agents.runtime import LLMAgent, ResolvedModel
from agents.tools.base import Risk, ToolContext, ToolRegistry
from agents.tools.config import ToolsConfig
from hub.agent import AgentServices
from hub.commands import CommandRegistry
from hub.errors import ConfigError, ToolFailed
from tests.agents.conftest import LLMVendor
from tests.agents.fake_run_context import CONV, USER, FakeRunContext, approve_button, collect, deny_button, inbound
from tests.fakes.llm_script import ScriptedCall

ROOT = Path(__file__).resolve().parents[2]
SERVER_MODULE = "tests.fakes.mcp_servers.tools_server"
TOKEN = "t0k-secret-header"


def stdio(**overrides: Any) -> dict[str, Any]:
    return {"command": sys.executable, "args": ["-m", SERVER_MODULE, "stdio"], "cwd": str(ROOT), **overrides}


def mcp_section(servers: dict[str, dict[str, Any]], **overrides: Any) -> dict[str, Any]:
    return {"servers": servers, "restart_first_seconds": 0.05, "restart_max_seconds": 0.2, **overrides}


def services(tmp_path: Path, vendor: LLMVendor | None, mcp: dict[str, Any]) -> AgentServices:
    providers = (
        {"main": vendor.section()}
        if vendor is not None
        else {"main": {"kind": "openai", "model": "m", "api_key": "k", "base_url": "http://127.0.0.1:9"}}
    )
    return AgentServices(
        agent_config={"provider": "main"},
        providers_config=providers,
        tools_config={"enabled": ["math"]},
        commands=CommandRegistry(),
        data_dir=tmp_path,
        mcp_config=mcp,
    )


def llm_agent(svc: AgentServices) -> LLMAgent:
    agent = build_agent(svc, environ={})
    assert isinstance(agent, LLMAgent)
    return agent


def tool_context(tmp_path: Path) -> ToolContext:
    return ToolContext(conversation=CONV, sender=USER, workspace=tmp_path, config=ToolsConfig())


def sent_to_model(vendor: LLMVendor, index: int) -> str:
    return json.dumps(vendor.script.requests[index].body["messages"])


async def serve_http(home: Path, *args: str) -> tuple[asyncio.subprocess.Process, int]:
    """The same server over streamable HTTP on 127.0.0.1 (``--port 0``: a free one) and its port."""
    proc = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", SERVER_MODULE, "http", *args),
        cwd=ROOT,
        env={"PATH": os.environ["PATH"], "HOME": str(home)},
        stdout=asyncio.subprocess.PIPE,
    )
    assert proc.stdout is not None
    line = await asyncio.wait_for(proc.stdout.readline(), 20)
    assert line.startswith(b"PORT "), line
    return proc, int(line.split()[1])


async def stop(proc: asyncio.subprocess.Process) -> None:
    if proc.returncode is None:
        proc.kill()
    await proc.wait()


@pytest.fixture
async def http_server(tmp_path: Path) -> AsyncIterator[str]:
    """The server over HTTP, requiring ``TOKEN``: its URL."""
    proc, port = await serve_http(tmp_path, "--token", TOKEN)
    try:
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        await stop(proc)


# ---------------------------------------------------------------------------- listed, called, answered
async def test_stdio_tool_is_listed_called_by_the_model_and_answered(llm_openai: LLMVendor, tmp_path: Path) -> None:
    agent = llm_agent(services(tmp_path, llm_openai, mcp_section({"calc": stdio(risk="low")})))
    script = llm_openai.script
    script.tool_calls(ScriptedCall("calc__add", {"a": 2, "b": 40}, id="call_1")).reply("It is 42.")
    try:
        tool = agent.tools.get("calc__add")
        assert tool is not None and tool.category == "mcp:calc" and tool.risk is Risk.LOW
        assert tool.parameters["properties"].keys() == {"a", "b"}
        assert "MCP server calc" in agent.tools.categories()["mcp:calc"]
        assert next(c for c in agent.checks() if c.what == "mcp calc").status == "ok"
        out = await collect(agent, FakeRunContext(inbound("add 2 and 40")))
    finally:
        await agent.aclose()
    script.assert_done()
    assert out[-1].text == "It is 42."
    offered = {t.get("name") or t["function"]["name"] for t in script.requests[0].body["tools"]}
    assert "calc__add" in offered
    assert '"content": "42"' in sent_to_model(llm_openai, 1)


async def test_http_tool_with_headers_only_to_its_url(
    llm_openai: LLMVendor, http_server: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    servers: dict[str, dict[str, Any]] = {
        "web": {"url": http_server, "headers": {"Authorization": f"Bearer {TOKEN}"}, "risk": "low"},
        "nokey": {"url": http_server, "start_timeout_seconds": 5},
    }
    agent = llm_agent(services(tmp_path, llm_openai, mcp_section(servers)))
    llm_openai.script.tool_calls(ScriptedCall("web__add", {"a": 1, "b": 2})).reply("3")
    try:
        rows = {c.what: c for c in agent.checks()}
        assert rows["mcp web"].status == "ok"
        assert rows["mcp nokey"].status == "ERROR" and "error response" in rows["mcp nokey"].detail  # no header: 401
        assert agent.tools.get("nokey__add") is None
        out = await collect(agent, FakeRunContext(inbound("1+2")))
    finally:
        await agent.aclose()
    assert out[-1].text == "3" and '"content": "3"' in sent_to_model(llm_openai, 1)
    assert TOKEN not in caplog.text


# ---------------------------------------------------------------------------- approvals and filters
@pytest.mark.parametrize("approve", [True, False])
async def test_a_risky_tool_asks_first(llm_openai: LLMVendor, tmp_path: Path, approve: bool) -> None:
    agent = llm_agent(services(tmp_path, llm_openai, mcp_section({"calc": stdio()})))  # risk: high by default
    llm_openai.script.tool_calls(ScriptedCall("calc__add", {"a": 20, "b": 22})).reply("done")
    ctx = FakeRunContext(inbound("add"))
    try:
        async with asyncio.TaskGroup() as tg:
            tg.create_task(ctx.answer_when_asked(approve_button if approve else deny_button))
            out = await collect(agent, ctx)
    finally:
        await agent.aclose()
    assert out[-1].text == "done"
    assert len(ctx.asked) == 1 and "calc__add" in ctx.asked[0].text
    result = sent_to_model(llm_openai, 1)
    assert ('"content": "42"' in result) is approve
    assert ("denied" in result) is not approve


async def test_deny_tools_and_allow_tools_are_honoured(llm_openai: LLMVendor, tmp_path: Path) -> None:
    servers = {"a": stdio(deny_tools=["shout", "die"]), "b": stdio(allow_tools=["add"])}
    agent = llm_agent(services(tmp_path, llm_openai, mcp_section(servers)))
    llm_openai.script.tool_calls(ScriptedCall("a__shout", {"text": "hi"})).reply("no")
    try:
        names = {t.name for t in agent.tools}
        out = await collect(agent, FakeRunContext())
    finally:
        await agent.aclose()
    assert {"a__add", "a__pid", "b__add"} <= names
    assert not {"a__shout", "a__die", "b__pid", "b__shout"} & names
    offered = {t.get("name") or t["function"]["name"] for t in llm_openai.script.requests[0].body["tools"]}
    assert "a__shout" not in offered and out[-1].text == "no"
    assert "HI" not in sent_to_model(llm_openai, 1)


# ---------------------------------------------------------------------------- death and restart
async def test_server_killed_mid_call_is_a_clear_error_then_restarted(llm_openai: LLMVendor, tmp_path: Path) -> None:
    config = McpConfig.model_validate(mcp_section({"calc": stdio(risk="low")}, restart_first_seconds=1.0))
    servers = McpServers(config, state_dir=tmp_path / "mcp")
    servers.start()
    registry = ToolRegistry()
    servers.register(registry)
    agent = LLMAgent(
        lambda _setting: ResolvedModel(llm_openai.provider()), registry, AgentConfig(), closers=(servers.aclose,)
    )
    script = llm_openai.script
    script.tool_calls(ScriptedCall("calc__die", {})).tool_calls(ScriptedCall("calc__add", {"a": 1, "b": 1}))
    script.reply("it died")
    try:
        out = await collect(agent, FakeRunContext(inbound("die")))
        assert out[-1].text == "it died"
        assert "stopped answering during the call" in sent_to_model(llm_openai, 1)
        assert "is unavailable" in sent_to_model(llm_openai, 2)  # before the restart: at once, not hung
        await asyncio.wait_for(servers.wait_up("calc", starts=2), 20)
        script.tool_calls(ScriptedCall("calc__add", {"a": 40, "b": 2})).reply("back")
        out = await collect(agent, FakeRunContext(inbound("again")))
    finally:
        await agent.aclose()
    assert out[-1].text == "back" and '"content": "42"' in sent_to_model(llm_openai, 4)


async def test_an_http_server_killed_mid_call_is_a_clear_error_then_reconnected(tmp_path: Path) -> None:
    proc, port = await serve_http(tmp_path)
    config = McpConfig.model_validate(mcp_section({"web": {"url": f"http://127.0.0.1:{port}/mcp", "risk": "low"}}))
    servers = McpServers(config, state_dir=tmp_path / "mcp")
    servers.start()
    registry = ToolRegistry()
    servers.register(registry)
    ctx = tool_context(tmp_path)
    try:
        die, add = registry.get("web__die"), registry.get("web__add")
        assert die is not None and add is not None
        with pytest.raises(ToolFailed, match="stopped answering during the call"):
            await asyncio.wait_for(die.invoke({}, ctx), 20)
        with pytest.raises(ToolFailed, match="'web' is unavailable"):  # the server is still gone
            await add.invoke({"a": 1, "b": 2}, ctx)
        proc, _ = await serve_http(tmp_path, "--port", str(port))
        await asyncio.wait_for(servers.wait_up("web", starts=2), 20)
        assert await add.invoke({"a": 1, "b": 2}, ctx) == "3"
    finally:
        await servers.aclose()
        await stop(proc)


async def test_a_server_killed_between_calls_is_noticed_and_restarted(tmp_path: Path) -> None:
    config = McpConfig.model_validate(mcp_section({"calc": stdio(risk="low")}, ping_seconds=0.1))
    servers = McpServers(config, state_dir=tmp_path / "mcp")
    servers.start()
    registry = ToolRegistry()
    servers.register(registry)
    try:
        pid_tool, add = registry.get("calc__pid"), registry.get("calc__add")
        assert pid_tool is not None and add is not None
        os.kill(int(await pid_tool.invoke({}, tool_context(tmp_path))), signal.SIGKILL)
        await asyncio.wait_for(servers.wait_up("calc", starts=2), 20)
        assert await add.invoke({"a": 1, "b": 2}, tool_context(tmp_path)) == "3"
    finally:
        await servers.aclose()


async def test_a_server_that_fails_to_start_is_reported_and_keeps_its_last_tools(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    first = llm_agent(services(tmp_path, None, mcp_section({"calc": stdio(risk="low")})))
    await first.aclose()
    broken = {"calc": {"command": str(tmp_path / "no-such-program"), "env": {"API_KEY": "hunter2-secret"}}}
    caplog.set_level(logging.DEBUG)
    agent = llm_agent(services(tmp_path, None, mcp_section(broken)))
    try:
        (row,) = [c for c in agent.checks() if c.what == "mcp calc"]
        assert row.status == "ERROR" and "not found" in row.detail and row.fix
        tool = agent.tools.get("calc__add")  # listed the last time it ran
        assert tool is not None
        with pytest.raises(ToolFailed, match="'calc' is unavailable"):
            await tool.invoke({"a": 1, "b": 2}, tool_context(tmp_path))
    finally:
        await agent.aclose()
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING and "MCP server calc" in r.getMessage()]
    assert len(warnings) == 1 and "\n" not in warnings[0].getMessage()
    assert "hunter2-secret" not in caplog.text


# ---------------------------------------------------------------------------- environment and config
async def test_the_hubs_environment_does_not_reach_a_stdio_server(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SECRET_X", "hub-only-secret")
    servers = {"a": stdio(env={"GIVEN": "for-a"}, risk="low"), "b": stdio(risk="low")}
    agent = llm_agent(services(tmp_path, None, mcp_section(servers)))
    ctx = tool_context(tmp_path)
    try:
        env_var, names, other = (agent.tools.get(n) for n in ("a__env_var", "a__env_names", "b__env_var"))
        assert env_var is not None and names is not None and other is not None
        assert await env_var.invoke({"name": "SECRET_X"}, ctx) == "<unset>"
        assert await env_var.invoke({"name": "GIVEN"}, ctx) == "for-a"
        assert await other.invoke({"name": "GIVEN"}, ctx) == "<unset>"  # only the server it is configured for
        seen = set((await names.invoke({}, ctx)).split(","))
    finally:
        await agent.aclose()
    assert seen <= {"GIVEN", "HOME", "PATH", "USER", "LOGNAME", "SHELL", "TERM", "LC_CTYPE"}


@pytest.mark.parametrize(
    ("servers", "key"),
    [
        ({"x": {"command": "a", "url": "http://h/mcp"}}, "mcp.servers.x"),
        ({"x": {}}, "mcp.servers.x"),
        ({"x": {"url": "ftp://h"}}, "mcp.servers.x.url"),
        ({"x": {"command": "a", "headers": {"A": "b"}}}, "mcp.servers.x"),
        ({"a__b": {"command": "a"}}, "mcp.servers"),
        ({"x": {"command": "a", "risk": "extreme"}}, "mcp.servers.x.risk"),
    ],
)
def test_bad_config_names_the_key(tmp_path: Path, servers: dict[str, Any], key: str) -> None:
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        build_agent(services(tmp_path, None, {"servers": servers}), environ={})
