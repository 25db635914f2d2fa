"""``autohands chat`` with an OpenAI-compatible provider holds a multi-turn conversation that
uses a tool: the real CLI in a subprocess, the real openai SDK, the fake server in this test."""

from __future__ import annotations

import asyncio
from pathlib import Path

from tests.chat_process import start_chat
from tests.fakes.llm_script import LLMScript, ScriptedCall
from tests.fakes.openai_server import FakeOpenAI

ROOT = Path(__file__).resolve().parents[2]


async def test_chat_multi_turn_with_a_tool(tmp_path: Path) -> None:
    script = LLMScript(api_key="sk-local")
    script.tool_calls(ScriptedCall("calculate", {"expression": "17 * 23"}, id="call_1"))
    script.reply("17 × 23 is 391.")
    script.reply("You asked me to multiply 17 by 23.")
    async with FakeOpenAI(script) as fake:
        cfg = tmp_path / "config.toml"
        cfg.write_text(f"""
[hub]
data_dir = "{tmp_path / "data"}"
[providers.local]
kind = "openai"
base_url = "{fake.base_url}"
api_key = "sk-local"
model = "local-model"
[agent]
provider = "local"
""")
        proc = await start_chat(tmp_path, cfg)
        try:
            out, err = await asyncio.wait_for(proc.communicate(b"what is 17 * 23?\nwhat did I ask you before?\n"), 60)
        finally:
            if proc.returncode is None:  # timed out: do not leave the chat running
                proc.kill()
                await proc.wait()
    text = out.decode()
    assert proc.returncode == 0, err.decode()[-2000:]
    assert "17 × 23 is 391." in text and "You asked me to multiply 17 by 23." in text
    script.assert_done()
    first, second, third = (r.body for r in script.requests)
    assert any(t["function"]["name"] == "calculate" for t in first["tools"])
    tool_results = [m for m in second["messages"] if m["role"] == "tool"]
    assert tool_results and "391" in tool_results[0]["content"]
    # the second user turn carries the whole first exchange, tool call and result included
    roles = [m["role"] for m in third["messages"]]
    assert roles.count("user") == 2 and "tool" in roles
    assert "sk-local" not in err.decode()
