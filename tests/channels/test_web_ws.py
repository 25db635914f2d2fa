"""The web chat's WebSocket (channels/web, docs/API.md "WebSocket"): aiohttp's client against a
real hub (``[server] port = 0``) whose agent talks to the fake OpenAI server."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import sys
import time
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from hub.app import Hub
from hub.auth import COOKIE
from hub.config import Settings, load_settings
from tests.fakes.llm_script import LLMScript, ScriptedCall
from tests.fakes.openai_server import FakeOpenAI

KEY = "sk-web-test-key"
OTHER_KEY = "sk-web-other-key"
Frame = dict[str, Any]


def settings(
    tmp_path: Path, llm: FakeOpenAI, *, keys: bool = True, tools: Mapping[str, object] | None = None, **web: object
) -> Settings:
    return load_settings(
        environ={},
        overrides={
            "hub": {"data_dir": str(tmp_path / "data")},
            "server": {"enabled": True, "port": 0, "api_keys": [KEY, OTHER_KEY] if keys else []},
            "providers": {
                "local": {"kind": "openai", "base_url": llm.base_url, "api_key": "sk-local", "model": "local-model"}
            },
            "agent": {"provider": "local", "stream_min_chars": 1, "stream_interval_seconds": 0},
            "sessions": {"stop_grace_seconds": 0},
            "tools": dict(tools or {}),
            "channels": {"web": {"enabled": True, **web}},
        },
    )


def base(hub: Hub) -> str:
    assert hub.gateway is not None
    return f"http://127.0.0.1:{hub.gateway.bound_port}"


def bearer(key: str = KEY) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


class Socket:
    """A test client: frames in arrival order, and ways to wait for them."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.frames: list[Frame] = []

    async def send(self, **frame: object) -> None:
        await self.ws.send_str(json.dumps(frame))

    async def until(self, match: Callable[[Frame], bool], within: float = 20) -> Frame:
        for frame in self.frames:
            if match(frame):
                return frame
        async with asyncio.timeout(within):
            while True:
                msg = await self.ws.receive()
                assert msg.type is aiohttp.WSMsgType.TEXT, f"socket ended: {msg}"
                got: Frame = json.loads(msg.data)
                self.frames.append(got)
                if match(got):
                    return got

    def of(self, kind: str) -> list[Frame]:
        return [f for f in self.frames if f["type"] == kind]


@asynccontextmanager
async def connect(hub: Hub, key: str | None = KEY, **headers: str) -> AsyncIterator[Socket]:
    sent = {**(bearer(key) if key else {}), **headers}
    async with aiohttp.ClientSession() as http, http.ws_connect(base(hub) + "/ws", headers=sent) as ws:
        yield Socket(ws)


async def until(condition: Callable[[], bool], within: float = 20) -> None:
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


def final(text: str) -> Callable[[Frame], bool]:
    return lambda f: f["type"] == "message" and f.get("role") == "assistant" and f["text"] == text


async def test_ack_after_record_then_deltas_then_the_final_message(tmp_path: Path) -> None:
    script = LLMScript(api_key="sk-local").reply("Hello there, nice to meet you!", chunks=6)
    async with FakeOpenAI(script) as llm, Hub(settings(tmp_path, llm)) as hub, connect(hub) as s:
        await s.send(type="message", id="m1", conversation="c1", text="hi")
        ack = await s.until(lambda f: f["type"] == "ack")
        assert ack == {"type": "ack", "id": "m1", "conversation": "c1", "duplicate": False}
        # recorded before it was acknowledged: the user's own message is numbered first
        [user] = s.of("message")
        assert user["role"] == "user" and user["id"] == 1 and user["client_id"] == "m1"
        reply = await s.until(final("Hello there, nice to meet you!"))
    deltas = s.of("delta")
    assert deltas and all(s.frames.index(d) < s.frames.index(reply) for d in deltas)
    assert all("Hello there, nice to meet you!".startswith(d["text"]) for d in deltas)
    assert reply["id"] == 2 and reply["reply_to"] == "m1" and reply["conversation"] == "c1"
    assert reply["stream"] == deltas[-1]["stream"]
    script.assert_done()


async def test_a_question_is_answered_with_its_button(tmp_path: Path) -> None:
    workspace = tmp_path / "ws"
    workspace.mkdir()
    (workspace / "notes.txt").write_text("x")
    script = LLMScript(api_key="sk-local")
    script.tool_calls(ScriptedCall("run_command", {"command": "ls"}, id="call_1"))
    script.reply("You have notes.txt.")
    tools = {"workspace": str(workspace), "workspace_scope": "shared", "shell": {"allow_commands": ["ls"]}}
    async with FakeOpenAI(script) as llm:
        async with Hub(settings(tmp_path, llm, tools=tools)) as hub, connect(hub) as s:
            await s.send(type="message", id="m1", conversation="c1", text="which files?")
            question = await s.until(lambda f: f["type"] == "question")
            labels = {c["label"]: c["id"] for c in question["choices"]}
            await s.send(type="answer", question=question["question"], choice=labels["Approve"])
            await s.until(lambda f: f["type"] == "ack" and f.get("question") == question["question"])
            await s.until(final("You have notes.txt."))
            outcome = await s.until(lambda f: f["type"] == "message" and f.get("edit_of") == question["ref"])
            assert "Approved" in outcome["text"]
    script.assert_done()


async def test_resume_after_a_restart_replays_every_missed_message_once_in_order(tmp_path: Path) -> None:
    script = LLMScript(api_key="sk-local")
    script.reply("one")
    script.reply("never seen", first_token_delay=1.0)  # cut short by the stop
    script.reply("two, after the restart")
    async with FakeOpenAI(script) as llm:
        cfg = settings(tmp_path, llm)
        async with Hub(cfg) as hub:
            async with connect(hub) as s:
                await s.send(type="message", id="m1", conversation="c1", text="first")
                seen = (await s.until(final("one")))["id"]
                await s.send(type="message", id="m2", conversation="c1", text="second")
                await s.until(lambda f: f["type"] == "ack" and f["id"] == "m2")
            # the client is gone mid-answer; the hub stops while the model is still answering
            await until(lambda: len(script.requests) == 2)
        async with Hub(cfg) as hub:
            async with connect(hub) as s:
                await s.send(type="resume", conversation="c1", after=seen)
                await s.until(final("two, after the restart"))
                await s.until(lambda f: f["type"] == "status" and f["state"] == "synced")
                got = [f for f in s.frames if f["type"] == "message"]
            # a later client that saw nothing gets the whole transcript, numbered 1, 2, 3 …
            async with connect(hub) as t:
                await t.send(type="resume", conversation="c1", after=0)
                synced = await t.until(lambda f: f["type"] == "status" and f["state"] == "synced")
                everything = t.of("message")
    assert [f["text"] for f in got] == ["second", "two, after the restart"]
    assert [f["id"] for f in got] == [seen + 1, seen + 2]
    assert [(f["id"], f["text"]) for f in everything] == [
        (1, "first"),
        (2, "one"),
        (3, "second"),
        (4, "two, after the restart"),
    ]
    assert synced["last"] == 4
    assert "never seen" not in json.dumps(everything)


async def test_a_resent_client_message_is_answered_once(tmp_path: Path) -> None:
    script = LLMScript(api_key="sk-local").reply("only once")
    async with FakeOpenAI(script) as llm, Hub(settings(tmp_path, llm)) as hub:
        async with connect(hub) as s:
            await s.send(type="message", id="same", conversation="c1", text="hi")
            await s.until(final("only once"))
        async with connect(hub) as s:  # the client never saw the ack, say, and sends it again
            await s.send(type="message", id="same", conversation="c1", text="hi")
            ack = await s.until(lambda f: f["type"] == "ack")
            assert ack["duplicate"] is True
            await s.send(type="resume", conversation="c1", after=0)
            await s.until(lambda f: f["type"] == "status" and f["state"] == "synced")
            assert [f["text"] for f in s.of("message")] == ["hi", "only once"]
    script.assert_done()  # one model call


@pytest.mark.parametrize("origin", ["https://evil.example", "null"])
async def test_a_foreign_origin_is_refused_before_the_upgrade(tmp_path: Path, origin: str) -> None:
    async with FakeOpenAI(LLMScript()) as llm, Hub(settings(tmp_path, llm)) as hub:
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            async with connect(hub, Origin=origin):
                pass
        assert refused.value.status == 403
        async with connect(hub, Origin=base(hub)) as s:  # its own origin may
            await s.send(type="conversations")
            await s.until(lambda f: f["type"] == "conversations")


async def test_no_key_is_401_and_an_oversized_frame_closes_with_1009(tmp_path: Path) -> None:
    async with FakeOpenAI(LLMScript()) as llm, Hub(settings(tmp_path, llm, max_frame_bytes=2048)) as hub:
        for key in (None, "sk-wrong"):
            with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
                async with connect(hub, key):
                    pass
            assert refused.value.status == 401
        async with connect(hub) as s:
            await s.ws.send_str(json.dumps({"type": "message", "id": "big", "conversation": "c", "text": "x" * 4096}))
            closed = await s.ws.receive()
            assert closed.type is aiohttp.WSMsgType.CLOSE and closed.data == 1009


async def test_a_principal_cannot_resume_or_answer_in_anothers_conversation(tmp_path: Path) -> None:
    script = LLMScript(api_key="sk-local").reply("for the first key only")
    async with FakeOpenAI(script) as llm, Hub(settings(tmp_path, llm)) as hub:
        async with connect(hub, KEY) as s:
            await s.send(type="message", id="m1", conversation="shared-name", text="secret plans")
            await s.until(final("for the first key only"))
        async with connect(hub, OTHER_KEY) as o:
            await o.send(type="resume", conversation="shared-name", after=0)
            synced = await o.until(lambda f: f["type"] == "status")
            await o.send(type="conversations")
            listed = await o.until(lambda f: f["type"] == "conversations")
            await o.send(type="answer", question="whatever", choice="approve:x", conversation="shared-name")
            await o.until(lambda f: f["type"] in ("ack", "error"))
        async with connect(hub, KEY) as s:
            await s.send(type="conversations")
            mine = await s.until(lambda f: f["type"] == "conversations")
    assert synced["last"] == 0 and o.of("message") == [] and listed["conversations"] == []
    assert [(c["id"], c["title"]) for c in mine["conversations"]] == [("shared-name", "secret plans")]


async def test_malformed_frames_get_one_line_errors(tmp_path: Path) -> None:
    async with FakeOpenAI(LLMScript()) as llm, Hub(settings(tmp_path, llm)) as hub, connect(hub) as s:
        await s.ws.send_str("not json")
        await s.send(type="dance")
        await s.send(type="message", id="bad id!", conversation="c", text="x")
        await s.until(lambda f: len([g for g in s.frames if g["type"] == "error"]) == 3)
    messages = [f["message"] for f in s.of("error")]
    assert messages[0] == "a frame must be a JSON object"
    assert "unknown frame type" in messages[1]
    assert messages[2].startswith("id:")


async def test_the_login_link_works_once_and_sets_a_strict_cookie(tmp_path: Path) -> None:
    async with FakeOpenAI(LLMScript()) as llm, Hub(settings(tmp_path, llm)) as hub:
        assert hub.auth is not None
        token = hub.auth.login_link_token()
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:  # unsafe: an IP
            async with http.get(base(hub) + "/") as page:
                assert page.status == 401 and "sign-in link" in await page.text()
            async with http.get(base(hub) + f"/login?token={token}", allow_redirects=False) as signed:
                assert signed.status == 303 and signed.headers["Location"] == "/"
                cookie = signed.headers["Set-Cookie"]
            assert f"{COOKIE}=" in cookie and "HttpOnly" in cookie and "SameSite=Strict" in cookie
            assert "Secure" not in cookie  # plain http on loopback
            async with http.get(base(hub) + "/") as page:  # the cookie signs the browser in
                assert page.status == 200 and "text/html" in page.headers["Content-Type"]
                assert page.headers["Content-Security-Policy"].startswith("default-src 'self'")
            async with http.ws_connect(base(hub) + "/ws", headers={"Origin": base(hub)}) as ws:
                await ws.send_str(json.dumps({"type": "conversations"}))
                assert json.loads((await ws.receive()).data)["type"] == "conversations"
        async with aiohttp.ClientSession() as http:
            async with http.get(base(hub) + f"/login?token={token}", allow_redirects=False) as again:
                assert again.status == 403  # once


async def test_static_files_have_their_types_and_no_way_out(tmp_path: Path) -> None:
    async with FakeOpenAI(LLMScript()) as llm, Hub(settings(tmp_path, llm)) as hub:
        async with aiohttp.ClientSession(headers=bearer()) as http:
            async with http.get(base(hub) + "/static/app.js") as js:
                assert js.status == 200 and js.headers["Content-Type"].startswith("text/javascript")
                assert js.headers["Cache-Control"] == "no-cache" and "ETag" in js.headers
                assert "frame-ancestors 'none'" in js.headers["Content-Security-Policy"]
            for bad in ("/static/../channel.py", "/static/%2e%2e/channel.py", "/static/nothing.js"):
                async with http.get(base(hub) + bad) as out:
                    assert out.status == 404


async def test_chat_commands_work_over_the_socket(tmp_path: Path) -> None:
    async with FakeOpenAI(LLMScript()) as llm, Hub(settings(tmp_path, llm)) as hub, connect(hub) as s:
        await s.send(type="message", id="r", conversation="c1", text="/remind in 1 second stretch")
        set_up = await s.until(lambda f: f["type"] == "message" and f.get("reply_to") == "r")
        await s.send(type="message", id="j", conversation="c1", text="/jobs")
        jobs = await s.until(lambda f: f["type"] == "message" and f.get("reply_to") == "j")
        # the reminder comes back to the same conversation, unprompted
        reminder = await s.until(lambda f: f.get("role") == "assistant" and f["reply_to"] is None)
    assert "stretch" in jobs["text"] and set_up["id"] < jobs["id"] < reminder["id"]
    assert "stretch" in reminder["text"] and reminder["conversation"] == "c1"


async def test_an_open_server_lets_the_local_browser_in_without_a_key(tmp_path: Path) -> None:
    script = LLMScript(api_key="sk-local").reply("local hello")
    async with FakeOpenAI(script) as llm, Hub(settings(tmp_path, llm, keys=False)) as hub:
        async with connect(hub, None, Origin=base(hub)) as s:
            await s.send(type="message", id="m1", conversation="c1", text="hi")
            await s.until(final("local hello"))
        async with aiohttp.ClientSession() as http, http.get(base(hub) + "/") as page:
            assert page.status == 200


def docs_example() -> str:
    """The Python example of docs/API.md's WebSocket section."""
    text = (Path(__file__).parents[2] / "docs" / "API.md").read_text()
    section = text.split("## WebSocket", 1)[1].split("\n## ", 1)[0]
    [code] = re.findall(r"```python\n(.*?)```", section, re.DOTALL)
    return str(code)


async def test_the_documented_python_example_works(tmp_path: Path) -> None:
    script = LLMScript(api_key="sk-local").reply("Hello from the docs!")
    namespace: dict[str, Any] = {"__name__": "docs_example"}
    exec(compile(docs_example(), "docs/API.md", "exec"), namespace)
    async with FakeOpenAI(script) as llm, Hub(settings(tmp_path, llm)) as hub:
        answer = await namespace["ask"](base(hub), KEY, "docs-example", "Hello!")
    assert answer == "Hello from the docs!"


async def test_autohands_run_prints_the_chat_and_a_login_link_that_lands_in_a_working_chat(tmp_path: Path) -> None:
    # A new user's first command: nothing but a key configured (no provider, no other channel).
    config = tmp_path / "config.toml"
    config.write_text(f'[hub]\ndata_dir = "{tmp_path / "data"}"\n[server]\nport = 0\napi_keys = ["{KEY}"]\n')
    env = {"HOME": str(tmp_path), "PATH": os.environ.get("PATH", ""), "PYTHONUNBUFFERED": "1"}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "hub.cli", "--config", str(config), "run",
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL, env=env,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        async with asyncio.timeout(30):
            chat = (await proc.stdout.readline()).decode()
            sign_in = (await proc.stdout.readline()).decode()
        url = re.fullmatch(r"Web chat: (http://127\.0\.0\.1:\d+)/\n", chat)
        link = re.search(r"(http://\S+/login\?token=\S+)", sign_in)
        assert url and link, (chat, sign_in)
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
            async with http.get(link[1]) as page:  # redirected to the chat, signed in
                assert page.status == 200 and str(page.url) == url[1] + "/"
            async with http.ws_connect(url[1] + "/ws", headers={"Origin": url[1]}) as ws:
                await ws.send_json({"type": "message", "id": "first", "conversation": "c1", "text": "hello"})
                async with asyncio.timeout(30):
                    async for msg in ws:
                        frame = json.loads(msg.data)
                        if frame["type"] == "message" and frame["role"] == "assistant":
                            break
        assert frame["reply_to"] == "first" and frame["text"]  # the setup instructions, say
    finally:
        proc.send_signal(signal.SIGINT)
        async with asyncio.timeout(30):
            assert await proc.wait() == 0


async def test_a_peer_that_stops_answering_pings_is_dropped_and_stopping_closes_with_1001(tmp_path: Path) -> None:
    async with FakeOpenAI(LLMScript()) as llm, Hub(settings(tmp_path, llm, heartbeat_seconds=0.2)) as hub:
        assert hub.gateway is not None
        async with aiohttp.ClientSession(headers=bearer()) as http:
            async with http.ws_connect(base(hub) + "/ws", autoping=False) as dead:  # never answers a ping
                async with asyncio.timeout(5):
                    while (msg := await dead.receive()).type is aiohttp.WSMsgType.PING:
                        pass
                assert msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.CLOSING)
            async with http.ws_connect(base(hub) + "/ws") as alive:
                await alive.send_json({"type": "conversations"})
                await alive.receive()
                await hub.stop()
                closed = await alive.receive()
                assert closed.type is aiohttp.WSMsgType.CLOSE and closed.data == 1001
