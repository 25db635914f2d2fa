"""docs/EXTENSION_GUIDE.md's worked examples (examples/extensions/) run: the tool called by the
scripted fake model, the channel started in a hub and answering, the provider answering a run."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from agents.build import build_agent
from agents.config import AgentConfig
from agents.providers.config import ProviderConfig
from agents.runtime import LLMAgent, ResolvedModel
from agents.tools.base import ToolRegistry
from agents.tools.time import time_tools
from hub._extension_host import ExtensionHost
from hub.agent import AgentServices
from hub.app import Hub
from hub.commands import CommandRegistry
from hub.config import load_settings
from hub.extensions import ExtensionsConfig, activate_folders, deactivate_folders, load_entry_point
from tests.agents.fake_run_context import FakeRunContext, collect, inbound
from tests.fakes.llm_script import LLMScript, ScriptedCall
from tests.fakes.openai_server import FakeOpenAI

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples" / "extensions"
GUIDE = ROOT / "docs" / "EXTENSION_GUIDE.md"
KEY = "sk-test-guide"


@pytest.fixture
async def host() -> AsyncIterator[ExtensionHost]:
    host = ExtensionHost(ExtensionsConfig(paths=(EXAMPLES,)), None)
    await host.start()
    yield host
    await host.stop()


def test_the_guide_names_each_example_and_each_exists() -> None:
    named = set(re.findall(r"examples/extensions/(\w+\.py)", GUIDE.read_text()))
    assert named == {"units.py", "webhook.py", "canned.py"}
    assert all((EXAMPLES / name).is_file() for name in named)


async def test_the_tool_example_is_called_by_the_scripted_model(tmp_path: Path, host: ExtensionHost) -> None:
    async with FakeOpenAI(LLMScript(api_key=KEY)) as fake:
        services = AgentServices(
            agent_config={"provider": "main"},
            providers_config={"main": {"kind": "openai", "model": "m", "api_key": KEY, "base_url": fake.base_url}},
            tools_config={"enabled": ["math"], "workspace": str(tmp_path / "ws")},
            commands=CommandRegistry(),
            data_dir=tmp_path,
            extensions=host,
        )
        agent = build_agent(services, environ={})
        assert isinstance(agent, LLMAgent)
        call = ScriptedCall("convert_temperature", {"value": 100, "to": "F"}, id="t1")
        fake.script.tool_calls(call).reply("100 °C is 212 °F.")
        out = await collect(agent, FakeRunContext(inbound("100 C in F?")))
        await agent.aclose()
        assert out[-1].text == "100 °C is 212 °F."
        results = [m for r in fake.script.requests for m in r.body["messages"] if m["role"] == "tool"]
        assert results[0]["content"] == "212.0 °F"
        fake.script.assert_done()


async def test_the_channel_example_answers_in_a_hub(tmp_path: Path) -> None:
    got: asyncio.Queue[dict[str, Any]] = asyncio.Queue()

    async def replies(request: web.Request) -> web.Response:
        await got.put(await request.json())
        return web.json_response({})

    app = web.Application()
    app.router.add_post("/replies", replies)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    settings = load_settings(
        environ={},
        overrides={
            "hub": {"data_dir": str(tmp_path / "data")},
            "server": {"enabled": True, "port": 0},
            "agent": {"runtime": "echo"},
            "extensions": {"paths": [str(EXAMPLES)]},
            "channels": {
                "web": {"enabled": False},
                "api": {"enabled": False},
                "webhook": {"enabled": True, "token": "s3cret", "reply_url": f"http://127.0.0.1:{port}/replies"},
            },
        },
    )
    try:
        async with Hub(settings) as hub, aiohttp.ClientSession() as http:
            assert hub.gateway is not None
            url = f"http://127.0.0.1:{hub.gateway.bound_port}/hooks/webhook"
            message = {"user": "42", "id": "m-1", "text": "hi"}
            async with http.post(url, json=message, headers={"X-Webhook-Token": "nope"}) as r:
                assert r.status == 401
            async with http.post(url, json=message, headers={"X-Webhook-Token": "s3cret"}) as r:
                assert r.status == 200 and await r.json() == {"accepted": True}
            reply = await asyncio.wait_for(got.get(), 10)
            assert reply["chat"] == "42" and reply["text"] == "echo: hi" and reply["reply_to"] == "m-1"
    finally:
        await runner.cleanup()


async def test_the_provider_example_answers_a_run(host: ExtensionHost) -> None:
    activate_folders(host.folders)
    try:
        cls = load_entry_point("autohands.providers", "canned")
    finally:
        deactivate_folders(host.folders)
    assert callable(cls)
    provider = cls("canned", ProviderConfig(kind="openai", model="canned-1"))
    tools = ToolRegistry()
    tools.extend(time_tools())
    agent = LLMAgent(lambda _: ResolvedModel(provider), tools, AgentConfig())
    hello = await collect(agent, FakeRunContext(inbound("hello there")))
    assert hello[-1].text == "Hello! I am a canned model."
    timed = await collect(agent, FakeRunContext(inbound("what time is it?")))
    assert timed[-1].text.startswith("The tool said: ")


async def test_a_config_table_names_the_provider_extension(tmp_path: Path) -> None:
    """``[providers.NAME] kind = "canned"`` picks the folder extension's provider (before, ``kind``
    accepted only openai and anthropic, so a third-party provider could not be configured)."""
    from tests.hub.conftest import RecordingChannel

    ch = RecordingChannel()
    settings = load_settings(
        environ={},
        overrides={
            "hub": {"data_dir": str(tmp_path / "data")},
            "server": {"enabled": False},
            "extensions": {"paths": [str(EXAMPLES)]},
            "providers": {"mine": {"kind": "canned", "model": "canned-1"}},
            "agent": {"provider": "mine"},
            "tools": {"enabled": ["time"], "workspace": str(tmp_path / "ws")},
        },
    )
    async with Hub(settings, channels={ch.name: ch}):
        await ch.say("hello there")
        [answer] = await ch.wait_sent(1, timeout=10)
    assert answer.text == "Hello! I am a canned model."
