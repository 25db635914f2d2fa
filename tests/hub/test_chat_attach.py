"""``autohands chat`` beside a running hub attaches to it through its web chat's WebSocket
(hub/_chat_remote.py): a real hub in the test (``[server] port = 0``, the fake OpenAI model) and
the chat in a subprocess on the same config, its input piped line by line."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp

from hub.app import Hub
from hub.config import load_settings
from tests.chat_process import start_chat
from tests.fakes.llm_script import LLMScript, ScriptedCall
from tests.fakes.openai_server import FakeOpenAI

ROOT = Path(__file__).resolve().parents[2]
ADMIN_KEY = "sk-attach-admin-key"
API_KEY = "sk-attach-api-key"


def write_config(tmp_path: Path, llm: FakeOpenAI, *, port: int = 0, server: str = "", web: bool = True) -> Path:
    workspace = tmp_path / "ws"
    workspace.mkdir(exist_ok=True)
    (workspace / "notes.txt").write_text("x")
    cfg = tmp_path / "c.toml"
    cfg.write_text(
        f'[hub]\ndata_dir = "{tmp_path / "d"}"\n'
        f"[server]\nport = {port}\n{server}"
        f'[providers.m]\nkind = "openai"\nbase_url = "{llm.base_url}"\nmodel = "m"\napi_key = "sk-x"\n'
        '[agent]\nprovider = "m"\nstream_min_chars = 1\nstream_interval_seconds = 0\n'
        "[sessions]\nstop_grace_seconds = 0\n"
        f'[tools]\nworkspace = "{workspace}"\nworkspace_scope = "shared"\n'
        '[tools.shell]\nallow_commands = ["ls"]\n'
        f"[channels.web]\nenabled = {'true' if web else 'false'}\n"
    )
    return cfg


@asynccontextmanager
async def running_hub(tmp_path: Path, llm: FakeOpenAI, *, server: str = "", web: bool = True) -> AsyncIterator[Path]:
    """A hub on the config (what ``autohands run`` holds); the config then names its port."""
    cfg = write_config(tmp_path, llm, server=server, web=web)
    async with Hub(load_settings(cfg, environ={})) as hub:
        assert hub.gateway is not None and hub.gateway.bound_port
        write_config(tmp_path, llm, port=hub.gateway.bound_port, server=server, web=web)
        yield cfg


class Chat:
    """``autohands chat --config cfg`` with piped stdin: type lines, wait for what it shows."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.out = ""

    async def expect(self, marker: str, within: float = 30) -> None:
        assert self.proc.stdout is not None
        async with asyncio.timeout(within):
            while marker not in self.out:
                chunk = await self.proc.stdout.read(4096)
                assert chunk, f"{marker!r} not shown before the end; stdout: {self.out!r}"
                self.out += chunk.decode()

    def type(self, line: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(line.encode() + b"\n")

    async def leave(self, within: float = 30) -> tuple[int, str]:
        """EOF on stdin; the exit status and stderr."""
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        return await self.end(within)

    async def end(self, within: float = 30) -> tuple[int, str]:
        assert self.proc.stdout is not None and self.proc.stderr is not None
        async with asyncio.timeout(within):
            self.out += (await self.proc.stdout.read()).decode()
            err = (await self.proc.stderr.read()).decode()
            return await self.proc.wait(), err


@asynccontextmanager
async def chat(tmp_path: Path, cfg: Path) -> AsyncIterator[Chat]:
    proc = await start_chat(tmp_path, cfg)
    try:
        yield Chat(proc)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def test_the_chat_attaches_and_a_second_attach_continues_the_conversation(tmp_path: Path) -> None:
    script = LLMScript(api_key="sk-x").reply("Hello from the running hub.", chunks=4).reply("Still here.")
    async with FakeOpenAI(script) as llm, running_hub(tmp_path, llm) as cfg:
        async with chat(tmp_path, cfg) as first:
            first.type("hi")
            await first.expect("Hello from the running hub.\n")
            code, err = await first.leave()
        assert code == 0, err
        assert "Attached to the running hub at http://127.0.0.1:" in err and "'terminal'" in err
        assert "Continuing" not in err
        assert first.out.count("Hello from the running hub.") == 1  # deltas, then only the rest
        async with chat(tmp_path, cfg) as second:
            second.type("again")
            await second.expect("Still here.\n")
            code, err = await second.leave()
        assert code == 0, err
        assert "Continuing your conversation from today" in err and "(2 messages)" in err
    script.assert_done()
    said = [m["content"] for m in script.requests[-1].body["messages"] if m["role"] != "system"]
    assert said[0].endswith("\nhi") and said[1] == "Hello from the running hub."  # one conversation


async def test_a_tool_approval_is_answered_with_y(tmp_path: Path) -> None:
    script = LLMScript(api_key="sk-x")
    script.tool_calls(ScriptedCall("run_command", {"command": "ls"}, id="call_1")).reply("You have notes.txt.")
    async with FakeOpenAI(script) as llm, running_hub(tmp_path, llm) as cfg, chat(tmp_path, cfg) as c:
        c.type("which files?")
        await c.expect("Approve running run_command?")
        await c.expect("[y/N]\n")
        c.type("y")
        await c.expect("Approved")
        await c.expect("You have notes.txt.\n")
        code, err = await c.leave()
    assert code == 0, err
    script.assert_done()


async def test_a_reminder_arrives_labelled(tmp_path: Path) -> None:
    async with FakeOpenAI(LLMScript()) as llm, running_hub(tmp_path, llm) as cfg, chat(tmp_path, cfg) as c:
        c.type("/remind in 1 second hi")
        await c.expect("⏰ Reminder: hi")
        code, err = await c.leave()
    assert code == 0, err


async def test_with_keys_it_uses_the_admin_key_of_the_config(tmp_path: Path) -> None:
    keys = f'api_keys = ["{API_KEY}"]\nadmin_keys = ["{ADMIN_KEY}"]\n'
    script = LLMScript(api_key="sk-x").reply("Keyed answer.")
    async with FakeOpenAI(script) as llm, running_hub(tmp_path, llm, server=keys) as cfg:
        async with chat(tmp_path, cfg) as c:
            c.type("hello")
            await c.expect("Keyed answer.\n")
            code, err = await c.leave()
        assert code == 0, err
        # The conversation is the admin key's: that key resumes it, the API key has none.
        port = cfg.read_text().split("port = ")[1].split("\n")[0]
        assert await said_in_terminal(port, ADMIN_KEY) == ["hello", "Keyed answer."]
        assert await said_in_terminal(port, API_KEY) == []


async def said_in_terminal(port: str, key: str) -> list[str]:
    headers = {"Authorization": f"Bearer {key}"}
    async with aiohttp.ClientSession() as http, http.ws_connect(f"http://127.0.0.1:{port}/ws", headers=headers) as ws:
        await ws.send_json({"type": "resume", "conversation": "terminal", "after": 0})
        texts: list[str] = []
        async with asyncio.timeout(10):
            while (frame := await ws.receive_json())["type"] != "status" or frame["state"] != "synced":
                if frame["type"] == "message":
                    texts.append(frame["text"])
        return texts


async def test_a_key_the_hub_refuses_is_the_refusal_with_the_reason(tmp_path: Path) -> None:
    async with FakeOpenAI(LLMScript()) as llm, running_hub(tmp_path, llm, server=f'api_keys = ["{API_KEY}"]\n') as cfg:
        cfg.write_text(cfg.read_text().replace(API_KEY, "sk-not-the-hubs-key"))
        async with chat(tmp_path, cfg) as c:
            code, err = await c.leave()
    assert code == 2
    [line] = err.splitlines()
    assert "cannot attach to it: http://127.0.0.1:" in line
    assert "refused the key (the first of [server] api_keys)" in line
    assert "stop the hub first" in line and "sk-not-the-hubs-key" not in line


async def test_a_hub_without_the_web_chat_is_the_refusal_with_the_reason(tmp_path: Path) -> None:
    async with FakeOpenAI(LLMScript()) as llm, running_hub(tmp_path, llm, web=False) as cfg, chat(tmp_path, cfg) as c:
        code, err = await c.leave()
    assert code == 2
    [line] = err.splitlines()
    assert line.startswith("autohands: error: the hub running on this database (pid ")
    assert "serves no web chat" in line and "stop the hub first" in line
    assert c.out == ""


async def test_a_hub_that_stops_ends_the_chat_in_one_line(tmp_path: Path) -> None:
    script = LLMScript(api_key="sk-x").reply("Before the stop.")
    async with FakeOpenAI(script) as llm:
        async with running_hub(tmp_path, llm) as cfg:
            c = chat(tmp_path, cfg)
            attached = await c.__aenter__()
            attached.type("hi")
            await attached.expect("Before the stop.\n")
        try:  # the hub has stopped; stdin is still open
            code, err = await attached.end()
        finally:
            await c.__aexit__(None, None, None)
    assert code == 1
    assert err.splitlines()[-1].startswith("autohands: the running hub at http://127.0.0.1:")
    assert "is stopping" in err.splitlines()[-1]


async def test_ctrl_c_stops_the_answer_then_leaves_at_the_prompt(tmp_path: Path) -> None:
    from tests.hub.test_chat_terminal import PROMPT, Terminal

    async with FakeOpenAI(LLMScript("echo", latency=30)) as llm, running_hub(tmp_path, llm) as cfg:

        def conversation() -> int:
            with Terminal(tmp_path, "--config", str(cfg)) as term:
                before = term.modes()
                term.expect(b"Attached to the running hub", within=30)
                term.expect(PROMPT)
                term.type("tell me a long story\r")
                deadline = time.monotonic() + 10  # until the run has reached the model
                while not llm.script.requests and time.monotonic() < deadline:
                    time.sleep(0.02)
                term.ctrl_c()
                term.expect(b"stopping the answer")
                term.expect(b"Stopped.")
                term.expect(PROMPT)  # the chat goes on; at the prompt Ctrl+C leaves
                term.ctrl_c()
                code = term.wait_exit(within=10)
                assert term.modes() == before == (True, True)
                return code

        assert await asyncio.to_thread(conversation) == 130
