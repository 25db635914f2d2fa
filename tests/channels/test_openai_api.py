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


async def retry_until_answered(client: openai.AsyncOpenAI, **kw: Any) -> Any:
    """Retry a keyed request that times out (504) until its run's answer comes; each try waits
    on the same run for ``request_timeout_seconds``."""
    for _ in range(40):
        try:
            return await client.chat.completions.create(model="autohands", **kw)
        except openai.APIStatusError as exc:
            assert exc.status_code == 504, exc.message
    raise AssertionError("never answered")


@pytest.mark.parametrize("served", [{"channels": {"api": {"request_timeout_seconds": 0.3}}}], indirect=True)
async def test_a_keyed_request_that_timed_out_is_answered_on_retry(served: Served) -> None:
    served.script.reply("Late but here", first_token_delay=1.0)
    client = served.client()
    kw: Any = {"messages": [{"role": "user", "content": "slow"}], "extra_headers": {"Idempotency-Key": "t-1"}}
    with pytest.raises(openai.APIStatusError) as err:
        await client.chat.completions.create(model="autohands", **kw)
    assert err.value.status_code == 504 and "Idempotency-Key" in err.value.message
    answer = await retry_until_answered(client, **kw)
    assert answer.choices[0].message.content == "Late but here"
    again = await client.chat.completions.create(model="autohands", **kw)  # settled: the stored answer
    assert again.id == answer.id and again.choices[0].message.content == "Late but here"
    assert len(served.script.requests) == 1


async def test_a_keyed_stream_whose_client_left_is_answered_on_retry(served: Served) -> None:
    served.script.reply("Still answered", chunks=3, first_token_delay=0.5)
    client = served.client()
    kw: Any = {
        "model": "autohands",
        "messages": [{"role": "user", "content": "leave early"}],
        "stream": True,
        "extra_headers": {"Idempotency-Key": "d-1"},
    }
    stream = await client.chat.completions.create(**kw)
    first = await anext(aiter(stream))
    assert first.choices[0].delta.role == "assistant"
    await stream.close()  # the client leaves before the model's first token
    text = ""
    async for chunk in await client.chat.completions.create(**kw):
        text += (chunk.choices[0].delta.content or "") if chunk.choices else ""
    assert text == "Still answered"
    assert len(served.script.requests) == 1


async def test_a_key_cut_off_by_a_restart_says_so(tmp_path: Path) -> None:
    async with FakeOpenAI(LLMScript(api_key="sk-local")) as llm:
        # The second reply is for the run the restarted hub resumes (when the first did not end).
        llm.script.reply("Too late", first_token_delay=1.0).reply("Resumed")
        settings = hub_settings(tmp_path, llm, channels={"api": {"request_timeout_seconds": 0.3}})
        kw: Any = {"messages": [{"role": "user", "content": "x"}], "extra_headers": {"Idempotency-Key": "r-1"}}
        for life in (1, 2):
            async with Hub(settings) as hub:
                assert hub.gateway is not None
                served = Served(hub, llm, f"http://127.0.0.1:{hub.gateway.bound_port}")
                if life == 1:
                    with pytest.raises(openai.APIStatusError) as timeout:
                        await served.client().chat.completions.create(model="autohands", **kw)
                    assert timeout.value.status_code == 504
                else:
                    with pytest.raises(openai.ConflictError) as lost:
                        await served.client().chat.completions.create(model="autohands", **kw)
    assert lost.value.code == "idempotency_lost"
    assert "cut off by a hub restart" in lost.value.message and "new Idempotency-Key" in lost.value.message


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
    keyed: dict[str, Any] = {"model": "autohands", "messages": [{"role": "user", "content": "b"}]}
    with pytest.raises(openai.RateLimitError):
        await client.chat.completions.create(**keyed, extra_headers={"Idempotency-Key": "k-429"})
    assert (await first).choices[0].message.content == "slow"
    served.script.reply("now b")  # refused before it ran, the key is free: the retry runs
    again = await client.chat.completions.create(**keyed, extra_headers={"Idempotency-Key": "k-429"})
    assert again.choices[0].message.content == "now b"


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


async def test_a_request_names_its_workflow_mode(served: Served) -> None:
    """``mode`` (our own field) picks the run's workflow mode, as ``/mode`` does in a chat: a
    ``batch`` request first asks the model for a plan; a mode that does not exist is a 400."""
    served.script.reply('{"calls": []}').reply("planned answer")
    client = served.client(default_headers={"X-AutoHands-Conversation": "modes"})
    resp = await client.chat.completions.create(
        model="autohands", messages=[{"role": "user", "content": "hi"}], extra_body={"mode": "batch"}
    )
    assert resp.choices[0].message.content == "planned answer"
    planning = str(served.script.requests[0].body["messages"][0]["content"])
    assert (
        planning.startswith("Plan the tool calls") and "tools" not in served.script.requests[0].body
    )  # batch plans first
    with pytest.raises(openai.BadRequestError, match="mode"):
        await client.chat.completions.create(
            model="autohands", messages=[{"role": "user", "content": "hi"}], extra_body={"mode": "sideways"}
        )
