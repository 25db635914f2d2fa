"""The OpenAI-compatible API with the official ``openai`` SDK as the client, against a hub whose
agent runs on the fake OpenAI model (``tests/fakes/openai_server.py``)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import openai
import pytest

from agents.streaming import APOLOGY
from channels.openai_api import PROVIDER_FAILED
from hub.app import Hub
from hub.config import load_settings
from tests.fakes.llm_script import LLMScript, ScriptedCall
from tests.fakes.openai_server import FakeOpenAI

KEY = "sk-test-api-key-123"


@dataclass
class Served:
    hub: Hub
    llm: FakeOpenAI
    url: str

    @property
    def script(self) -> LLMScript:
        return self.llm.script

    def client(self, key: str = KEY, **kw: Any) -> openai.AsyncOpenAI:
        return openai.AsyncOpenAI(base_url=self.url + "/v1", api_key=key, max_retries=0, **kw)


def hub_settings(tmp_path: Path, llm: FakeOpenAI, **extra: Any) -> Any:
    overrides: dict[str, Any] = {
        "hub": {"data_dir": str(tmp_path / "data")},
        "server": {"port": 0, "api_keys": [KEY]},
        "providers": {
            "local": {"kind": "openai", "base_url": llm.base_url, "api_key": "sk-local", "model": "local-model"}
        },
        "agent": {"provider": "local", "stream_min_chars": 1, "stream_interval_seconds": 0},
        "tools": {"enabled": ["math", "time"], "workspace": str(tmp_path / "ws")},
        "channels": {"web": {"enabled": False}},
    }
    for section, values in extra.items():
        overrides.setdefault(section, {}).update(values)
    return load_settings(environ={}, overrides=overrides)


@pytest.fixture
async def served(tmp_path: Path, request: pytest.FixtureRequest) -> AsyncIterator[Served]:
    extra = getattr(request, "param", {})
    async with FakeOpenAI(LLMScript(api_key="sk-local")) as llm:
        hub = Hub(hub_settings(tmp_path, llm, **extra))
        async with hub:
            assert hub.gateway is not None
            yield Served(hub, llm, f"http://127.0.0.1:{hub.gateway.bound_port}")


async def test_models_lists_the_agent_and_each_provider(served: Served) -> None:
    models = [m.id async for m in served.client().models.list()]
    assert models == ["autohands", "local/local-model"]


async def test_plain_answer_with_usage(served: Served) -> None:
    served.script.reply("Hello there", chunks=2)
    resp = await served.client().chat.completions.create(
        model="autohands", messages=[{"role": "user", "content": "hi"}]
    )
    assert resp.choices[0].message.content == "Hello there"
    assert resp.choices[0].finish_reason == "stop"
    assert resp.usage is not None and resp.usage.prompt_tokens > 0 and resp.usage.completion_tokens > 0
    served.script.assert_done()


async def test_answer_after_a_tool_call_streamed_with_usage(served: Served) -> None:
    served.script.tool_calls(ScriptedCall("calculate", {"expression": "6*7"}, id="c1")).reply(
        "Six times seven is 42.", chunks=3
    )
    stream = await served.client().chat.completions.create(
        model="autohands",
        messages=[{"role": "user", "content": "6*7?"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    text, finishes, usage = "", [], None
    async for chunk in stream:
        if chunk.choices:
            text += chunk.choices[0].delta.content or ""
            finishes.append(chunk.choices[0].finish_reason)
        if chunk.usage is not None:
            usage = chunk.usage
    assert text == "Six times seven is 42."  # the tool line is not part of the answer
    assert finishes[-1] == "stop" and usage is not None and usage.total_tokens > 0
    assert "42" in str(served.script.requests[1].body["messages"])


async def test_messages_are_the_history_and_stay_in_their_request(served: Served) -> None:
    served.script.reply("Blue.").reply("Fresh.")
    client = served.client()
    await client.chat.completions.create(
        model="autohands",
        messages=[
            {"role": "system", "content": "Answer in one word."},
            {"role": "user", "content": "My favourite colour is blue."},
            {"role": "assistant", "content": "Noted."},
            {"role": "user", "content": "What is my favourite colour?"},
        ],
    )
    sent = str(served.script.requests[0].body["messages"])
    assert "favourite colour is blue" in sent and "Noted." in sent and "one word" in sent
    await client.chat.completions.create(model="autohands", messages=[{"role": "user", "content": "Hi"}])
    assert "blue" not in str(served.script.requests[1].body["messages"])


async def test_conversation_header_keeps_history(served: Served) -> None:
    served.script.reply("Noted.").reply("Blue.")
    client = served.client(default_headers={"X-AutoHands-Conversation": "chat-1"})
    await client.chat.completions.create(model="autohands", messages=[{"role": "user", "content": "I like blue."}])
    await client.chat.completions.create(model="autohands", messages=[{"role": "user", "content": "Colour?"}])
    second = str(served.script.requests[1].body["messages"])
    assert "I like blue." in second and "Noted." in second


async def test_sync_client_and_a_provider_model(served: Served) -> None:
    served.script.reply("Sync hello")

    def call() -> str | None:
        client = openai.OpenAI(base_url=served.url + "/v1", api_key=KEY, max_retries=0)
        resp = client.chat.completions.create(model="local/other-model", messages=[{"role": "user", "content": "x"}])
        return resp.choices[0].message.content

    assert await asyncio.to_thread(call) == "Sync hello"
    assert served.script.requests[0].body["model"] == "other-model"


async def test_idempotency_key_answers_a_retry_once(served: Served) -> None:
    served.script.reply("Only once")
    client = served.client()
    msgs: Any = [{"role": "user", "content": "once"}]
    headers = {"Idempotency-Key": "abc-1"}
    first = await client.chat.completions.create(model="autohands", messages=msgs, extra_headers=headers)
    again = await client.chat.completions.create(model="autohands", messages=msgs, extra_headers=headers)
    assert again.choices[0].message.content == "Only once" and again.id == first.id
    assert len(served.script.requests) == 1
    with pytest.raises(openai.ConflictError) as err:
        await client.chat.completions.create(
            model="autohands", messages=[{"role": "user", "content": "other"}], extra_headers=headers
        )
    assert err.value.code == "idempotency_conflict"


async def test_error_cases_in_openai_shape(served: Served) -> None:
    client = served.client()
    with pytest.raises(openai.AuthenticationError):
        await served.client("wrong-key").chat.completions.create(
            model="autohands", messages=[{"role": "user", "content": "x"}]
        )
    with pytest.raises(openai.NotFoundError) as nf:
        await client.chat.completions.create(model="gpt-nope", messages=[{"role": "user", "content": "x"}])
    assert nf.value.code == "model_not_found"
    with pytest.raises(openai.BadRequestError) as bad:
        await client.chat.completions.create(
            model="autohands",
            messages=[{"role": "user", "content": "x"}],
            tools=[{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}],
        )
    assert "tools" in bad.value.message
    with pytest.raises(openai.BadRequestError) as bad:
        await client.chat.completions.create(model="autohands", messages=[{"role": "assistant", "content": "x"}])
    assert "messages.0.role" in bad.value.message
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {KEY}"}) as http:
        async with http.post(served.url + "/v1/chat/completions", data=b"{not json") as r:
            body = await r.json()
            assert r.status == 400 and body["error"]["code"] == "invalid_json" and "type" in body["error"]
        async with http.post(served.url + "/v1/chat/completions", json={"model": "autohands"}) as r:
            body = await r.json()
            assert r.status == 400 and "messages" in body["error"]["message"]
        async with http.post(served.url + "/v1/chat/completions", data=b"x" * 2_000_000) as r:
            assert r.status == 413 and (await r.json())["error"]["code"] == "request_too_large"
    assert served.script.requests == []


async def test_provider_failure_is_a_502_with_a_message(served: Served) -> None:
    served.script.error(400, message="bad model").error(400, message="bad model")
    with pytest.raises(openai.APIStatusError) as err:
        await served.client().chat.completions.create(model="autohands", messages=[{"role": "user", "content": "x"}])
    assert err.value.status_code == 502 and "Traceback" not in err.value.message
    assert PROVIDER_FAILED == APOLOGY


@pytest.mark.parametrize("served", [{"sessions": {"max_concurrent_runs": 1}}], indirect=True)
async def test_a_full_run_queue_is_a_429(served: Served) -> None:
    served.script.reply("slow", first_token_delay=5)
    client = served.client()
    first = asyncio.create_task(
        client.chat.completions.create(model="autohands", messages=[{"role": "user", "content": "a"}])
    )
    assert served.hub.sessions is not None
    while served.hub.sessions.active_runs < 1:  # noqa: ASYNC110 - no event marks a run's start
        await asyncio.sleep(0.01)
    with pytest.raises(openai.RateLimitError):
        await client.chat.completions.create(model="autohands", messages=[{"role": "user", "content": "b"}])
    assert (await first).choices[0].message.content == "slow"


@pytest.mark.parametrize(
    "served",
    [{"tools": {"enabled": ["file"], "approve_medium": True}, "agent": {"approval_timeout_seconds": 0.3}}],
    indirect=True,
)
async def test_a_tool_needing_approval_fails_closed(served: Served) -> None:
    served.script.tool_calls(ScriptedCall("write_file", {"path": "a.txt", "content": "x"}, id="w1")).reply(
        "I was not allowed to write it."
    )
    resp = await served.client().chat.completions.create(
        model="autohands", messages=[{"role": "user", "content": "write a.txt"}]
    )
    assert resp.choices[0].message.content == "I was not allowed to write it."
    assert (
        "not approved" in str(served.script.requests[1].body["messages"]).lower()
        or "den" in str(served.script.requests[1].body["messages"]).lower()
    )
