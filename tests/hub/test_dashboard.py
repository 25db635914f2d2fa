"""The dashboard's JSON API (hub/dashboard) against a real hub on a real port: who may use it,
jobs listed and cancelled, an approval answered from the dashboard (the run goes on), usage per
conversation, user and day, conversation search."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from hub.app import Hub
from hub.config import Settings, load_settings
from hub.messages import Outbound
from tests.fakes.llm_script import LLMScript, ScriptedCall
from tests.fakes.openai_server import FakeOpenAI
from tests.hub.conftest import RecordingChannel

ADMIN = "admin-key-0123456789"
USER = "user-key-0123456789"
CSRF = {"X-AutoHands": "1"}


def settings(tmp_path: Path, llm: FakeOpenAI | None = None, **server: Any) -> Settings:
    over: dict[str, Any] = {
        "hub": {"data_dir": str(tmp_path / "data")},
        "server": {"enabled": True, "port": 0, "api_keys": [USER], "admin_keys": [ADMIN], **server},
        "agent": {"runtime": "none"},
    }
    if llm is not None:
        workspace = tmp_path / "workspace"
        workspace.mkdir(exist_ok=True)
        (workspace / "notes.txt").write_text("buy milk\n")
        over["providers"] = {
            "local": {"kind": "openai", "base_url": llm.base_url, "api_key": "sk-local", "model": "gpt-4o-mini"}
        }
        over["agent"] = {"provider": "local"}
        over["tools"] = {"workspace": str(workspace), "workspace_scope": "shared", "shell": {"allow_commands": ["ls"]}}
    return load_settings(environ={}, overrides=over)


class Client:
    """The dashboard's API as the page calls it, with a key."""

    def __init__(self, http: aiohttp.ClientSession, base: str, key: str | None = ADMIN) -> None:
        self.http, self.base = http, base
        self.headers = {"Authorization": f"Bearer {key}"} if key else {}

    async def get(self, path: str, status: int = 200) -> Any:
        async with self.http.get(self.base + path, headers=self.headers) as r:
            assert r.status == status, await r.text()
            return await r.json()

    async def post(self, path: str, body: object = None, status: int = 200, **headers: str) -> Any:
        async with self.http.post(self.base + path, json=body or {}, headers={**self.headers, **CSRF, **headers}) as r:
            assert r.status == status, await r.text()
            return await r.json()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


def base(hub: Hub) -> str:
    assert hub.gateway is not None
    return f"http://127.0.0.1:{hub.gateway.bound_port}"


async def sent_where(ch: RecordingChannel, check: Callable[[Outbound], bool], within: float = 10.0) -> Outbound:
    """The first reply ``ch`` was sent that passes ``check``, waiting for more as they come."""
    async with asyncio.timeout(within):
        while (found := next((m for m in ch.sent if check(m)), None)) is None:
            await ch.wait_sent(len(ch.sent) + 1, timeout=within)
    return found


async def test_only_admins_may_use_the_dashboard(tmp_path: Path, http: aiohttp.ClientSession) -> None:
    ch = RecordingChannel()
    async with Hub(settings(tmp_path), channels={ch.name: ch}) as hub:
        url = base(hub)
        for path in (
            "/api/admin/overview",
            "/api/admin/jobs",
            "/api/admin/approvals",
            "/api/admin/usage",
            "/dashboard",
        ):
            async with http.get(url + path) as r:
                assert r.status == 401, path
            async with http.get(url + path, headers={"Authorization": f"Bearer {USER}"}) as r:
                assert r.status == 403, path
            async with http.get(url + path, headers={"Authorization": f"Bearer {ADMIN}"}) as r:
                assert r.status == 200, path
        admin = Client(http, url)
        overview = await admin.get("/api/admin/overview")
        assert {"name": "rec", "started": True, "problem": None} in overview["channels"]
        # A changing request needs the custom header, and a browser's Origin must be allowed.
        async with http.post(url + "/api/admin/jobs/abc/cancel", headers=admin.headers) as r:
            assert r.status == 403 and "X-AutoHands" in (await r.json())["error"]["message"]
        await admin.post("/api/admin/jobs/abc/cancel", status=403, Origin="https://evil.example")
        await admin.post("/api/admin/jobs/abc/cancel", status=404)  # allowed through, no such job
        async with http.get(url + "/dashboard", headers=admin.headers) as r:
            assert "script-src 'self'" in r.headers["Content-Security-Policy"]
        async with http.get(url + "/dashboard/dashboard.js") as r:
            assert r.status == 200 and r.content_type == "text/javascript"


async def test_jobs_are_listed_and_cancelled(tmp_path: Path, http: aiohttp.ClientSession) -> None:
    ch = RecordingChannel()
    async with Hub(settings(tmp_path), channels={ch.name: ch}) as hub:
        admin = Client(http, base(hub))
        await ch.say("in 2 hours drink water", kind="command", command="remind")
        await ch.wait_sent(1)
        [job] = (await admin.get("/api/admin/jobs"))["jobs"]
        assert job["conversation"] == "rec:c1" and "drink water" in job["text"]
        assert (await admin.post(f"/api/admin/jobs/{job['id']}/cancel")) == {"cancelled": job["id"]}
        assert (await admin.get("/api/admin/jobs"))["jobs"] == []
        gone = await admin.post(f"/api/admin/jobs/{job['id']}/cancel", status=404)
        assert "no active job" in gone["error"]["message"]


def ls_then(answer: str) -> LLMScript:
    script = LLMScript(api_key="sk-local")
    script.tool_calls(ScriptedCall("run_command", {"command": "ls"}, id="call_1"))
    script.reply(answer)
    return script


async def test_a_pending_approval_is_approved_from_the_dashboard(tmp_path: Path, http: aiohttp.ClientSession) -> None:
    script = ls_then("You have one file: notes.txt.")
    ch = RecordingChannel()
    async with FakeOpenAI(script) as llm, Hub(settings(tmp_path, llm), channels={ch.name: ch}) as hub:
        admin = Client(http, base(hub))
        await ch.say("which files do I have?", user="alice")

        await sent_where(ch, lambda m: bool(m.buttons))
        [question] = (await admin.get("/api/admin/approvals"))["approvals"]
        assert question["conversation"] == "rec:c1" and question["user"] == "alice"
        assert "run_command" in question["text"] and question["seconds_left"] > 0
        approve = next(b["id"] for b in question["buttons"] if b["label"] == "Approve")
        # Not alice, yet allowed: an admin on the dashboard may answer any run's question.
        await admin.post(f"/api/admin/approvals/{question['id']}", {"button": approve})
        await sent_where(ch, lambda m: m.text == "You have one file: notes.txt.")
        assert (await admin.get("/api/admin/approvals"))["approvals"] == []
        again = await admin.post(f"/api/admin/approvals/{question['id']}", {"button": approve}, status=404)
        assert "no pending question" in again["error"]["message"]
        # The operator's answer is recorded like any inbound: in the conversation's transcript.
        said = (await admin.get("/api/admin/transcript?key=rec:c1"))["entries"]
        taps = [e for e in said if e["from_user"] and e["text"].startswith("[tapped approve:")]
        assert [t["who"] for t in taps] == ["operator (dashboard)"]
    script.assert_done()
    [result] = [m for m in script.requests[1].body["messages"] if m["role"] == "tool"]
    assert "notes.txt" in result["content"]  # the command ran: the run went on after the approval


async def test_usage_per_conversation_user_and_day(tmp_path: Path, http: aiohttp.ClientSession) -> None:
    script = LLMScript(api_key="sk-local")
    script.reply("Hello Alice.").reply("Hello Bob.").reply("Hello again.")
    ch = RecordingChannel()
    async with FakeOpenAI(script) as llm, Hub(settings(tmp_path, llm), channels={ch.name: ch}) as hub:
        admin = Client(http, base(hub))
        await ch.say("hi", chat="a", user="alice")
        await ch.wait_sent(1)
        await ch.say("hi", chat="b", user="bob")
        await ch.wait_sent(2)
        await ch.say("hi again", chat="a", user="alice")
        await ch.wait_sent(3)
        report = await admin.get("/api/admin/usage?days=7")  # usage is committed with each reply
    assert report["estimate"] is True and report["currency"] == "USD"
    by_conv = {r["key"]: r for r in report["conversation"]}
    assert set(by_conv) == {"rec:a", "rec:b"} and by_conv["rec:a"]["runs"] == 2
    by_user = {r["key"]: r for r in report["user"]}
    assert set(by_user) == {"rec:alice", "rec:bob"} and by_user["rec:alice"]["runs"] == 2
    [day] = report["day"]
    assert day["runs"] == 3 and day["input_tokens"] > 0 and day["output_tokens"] > 0
    total = report["total"][0]
    assert total["cost_usd"] > 0  # gpt-4o-mini is in the default price table
    expected = (total["input_tokens"] * 0.15 + total["output_tokens"] * 0.60) / 1e6
    assert total["cost_usd"] == pytest.approx(expected, abs=1e-6)
    assert [m["key"] for m in report["model"]] == ["local/gpt-4o-mini"]


async def test_conversations_are_searched_and_read(tmp_path: Path, http: aiohttp.ClientSession) -> None:
    ch = RecordingChannel()
    async with Hub(settings(tmp_path), channels={ch.name: ch}) as hub:
        admin = Client(http, base(hub))
        await ch.say("the pelican flies at noon", chat="birds")
        await ch.say("fix the 100% CPU bug", chat="ops")
        await ch.wait_sent(2)
        everything = await admin.get("/api/admin/conversations")
        assert {c["key"] for c in everything["conversations"]} == {"rec:birds", "rec:ops"}
        found = await admin.get("/api/admin/conversations?q=PELICAN")
        assert [c["key"] for c in found["conversations"]] == ["rec:birds"]
        assert [c["key"] for c in (await admin.get("/api/admin/conversations?q=100%25"))["conversations"]] == [
            "rec:ops"
        ]
        assert (await admin.get("/api/admin/conversations?q=ops"))["conversations"][0]["key"] == "rec:ops"  # by key
        assert (await admin.get("/api/admin/conversations?q=nothing-like-it"))["conversations"] == []
        said = await admin.get("/api/admin/transcript?key=rec:birds")
        assert said["entries"][0]["text"] == "the pelican flies at noon"
        assert not said["entries"][1]["from_user"]  # the reply
        await admin.get("/api/admin/transcript?key=rec:nowhere", status=404)


async def test_an_api_request_waits_for_the_dashboard_to_approve_its_tool(
    tmp_path: Path, http: aiohttp.ClientSession
) -> None:
    # An HTTP API run has nobody in a chat to ask: only the dashboard can approve its tool.
    script = ls_then("You have one file: notes.txt.")
    async with FakeOpenAI(script) as llm, Hub(settings(tmp_path, llm)) as hub:
        url = base(hub)
        admin = Client(http, url)
        request = {"model": "autohands", "messages": [{"role": "user", "content": "which files do I have?"}]}

        async def ask() -> Any:
            async with http.post(
                url + "/v1/chat/completions", json=request, headers={"Authorization": f"Bearer {USER}"}
            ) as r:
                assert r.status == 200, await r.text()
                return await r.json()

        answer = asyncio.create_task(ask())
        async with asyncio.timeout(10):
            while not (questions := (await admin.get("/api/admin/approvals"))["approvals"]):
                done, _ = await asyncio.wait({answer}, timeout=0.05)  # fails fast if the request ended
                assert not done, answer.result()
        [question] = questions
        assert question["channel"] == "api"
        approve = next(b["id"] for b in question["buttons"] if b["label"] == "Approve")
        await admin.post(f"/api/admin/approvals/{question['id']}", {"button": approve})
        body = await asyncio.wait_for(answer, 10)
    assert body["choices"][0]["message"]["content"].endswith("You have one file: notes.txt.")
    [result] = [m for m in script.requests[1].body["messages"] if m["role"] == "tool"]
    assert "notes.txt" in result["content"]
