"""Providers through the real openai / anthropic SDKs against the local fakes."""

from __future__ import annotations

import json
import time
from email.utils import formatdate

import pytest

from agents.providers.anthropic import AnthropicProvider
from agents.providers.base import (
    AssistantMessage,
    Finished,
    ModelRequest,
    ModelResponse,
    Provider,
    Restarted,
    StreamEvent,
    TextDelta,
    ToolCall,
    ToolResult,
    ToolResultsMessage,
    ToolSpec,
    UserMessage,
    closing,
)
from agents.providers.chain import ProviderChain
from agents.providers.errors import (
    AuthError,
    BadRequest,
    ContextTooLong,
    NotFound,
    Overloaded,
    ProviderUnavailable,
    RateLimited,
    ServerError,
    StreamInterrupted,
    from_status,
    parse_retry_after,
)
from agents.providers.factory import build_chain, build_provider
from agents.providers.openai import OpenAIProvider
from agents.providers.retry import RetryPolicy
from agents.streaming import failure_reason, provider_failure_reason
from hub.backoff import EQUAL_JITTER, Backoff
from hub.config import Unresolved
from hub.errors import ConfigError, PluginError, ProviderError
from hub.extensions import Probing
from tests.fakes.llm_script import LLMScript, ScriptedCall, split_text

from .conftest import LLMVendor

TOOLS = (
    ToolSpec(
        name="get_time",
        description="Current time in a zone.",
        parameters={"type": "object", "properties": {"tz": {"type": "string"}}, "required": ["tz"]},
    ),
    ToolSpec(
        name="add",
        description="Add two numbers.",
        parameters={"type": "object", "properties": {"a": {"type": "number"}, "b": {"type": "number"}}},
    ),
)


def ask(text: str = "Hi there", **kwargs: object) -> ModelRequest:
    return ModelRequest(system="You are a test assistant.", messages=[UserMessage(text=text)], **kwargs)  # type: ignore[arg-type]


async def collect(provider: Provider, request: ModelRequest) -> tuple[list[str], ModelResponse]:
    """The deltas of the answer that finished (a ``Restarted`` drops those before it)."""
    deltas: list[str] = []
    finished: list[ModelResponse] = []
    async for event in provider.stream(request):
        if isinstance(event, TextDelta):
            deltas.append(event.text)
        elif isinstance(event, Restarted):
            deltas.clear()
        else:
            assert isinstance(event, Finished)
            finished.append(event.response)
    assert len(finished) == 1, "every stream ends with exactly one Finished"
    return deltas, finished[0]


async def events_until_restart(provider: Provider, request: ModelRequest) -> list[StreamEvent]:
    """What a caller that has already shown the text sees: it closes the stream at ``Restarted``."""
    seen: list[StreamEvent] = []
    async with closing(provider.stream(request)) as stream:
        async for event in stream:
            seen.append(event)
            if isinstance(event, Restarted):
                break
    return seen


async def test_plain_streamed_answer(llm_vendor: LLMVendor) -> None:
    text = "Hello there, this is a streamed answer."
    llm_vendor.script.reply(text, chunks=4)
    provider = llm_vendor.provider()

    deltas, response = await collect(provider, ask())

    assert deltas == split_text(text, 4)
    assert response.text == text
    assert response.stop_reason == "end"
    assert response.tool_calls == ()
    assert response.usage.input_tokens > 0 and response.usage.output_tokens > 0
    sent = llm_vendor.script.requests[0]
    assert sent.stream and sent.body["model"] == f"{llm_vendor.kind}-test-model"
    if llm_vendor.kind == "openai":
        assert sent.body["stream_options"] == {"include_usage": True}
    llm_vendor.script.assert_done()


async def test_two_tool_calls_assembled_from_split_deltas(llm_vendor: LLMVendor) -> None:
    llm_vendor.script.tool_calls(
        ScriptedCall("get_time", {"tz": "Europe/Paris"}, id="call_a"),
        ScriptedCall("add", {"a": 1, "b": 2}, id="call_b"),
        text="Let me check.",
        chunks=5,
    )
    llm_vendor.script.reply("It is noon and 1+2=3.")
    provider = llm_vendor.provider()

    _, first = await collect(provider, ask("time and sum?", tools=TOOLS))

    assert first.stop_reason == "tool_use"
    assert first.text == "Let me check."
    assert [(c.id, c.name, json.loads(c.arguments)) for c in first.tool_calls] == [
        ("call_a", "get_time", {"tz": "Europe/Paris"}),
        ("call_b", "add", {"a": 1, "b": 2}),
    ]

    follow_up = ModelRequest(
        system="sys",
        tools=TOOLS,
        messages=[
            UserMessage(text="time and sum?"),
            AssistantMessage(text=first.text, tool_calls=first.tool_calls),
            ToolResultsMessage(
                results=(
                    ToolResult(call_id="call_a", name="get_time", content="12:00"),
                    ToolResult(call_id="call_b", name="add", content="3"),
                )
            ),
        ],
    )
    _, second = await collect(provider, follow_up)
    assert second.text == "It is noon and 1+2=3."
    body = llm_vendor.script.requests[1].body
    if llm_vendor.kind == "openai":
        assert [m["role"] for m in body["messages"]] == ["system", "user", "assistant", "tool", "tool"]
        assert body["messages"][2]["tool_calls"][1]["function"]["name"] == "add"
        assert body["messages"][4] == {"role": "tool", "tool_call_id": "call_b", "content": "3"}
    else:
        assert [m["role"] for m in body["messages"]] == ["user", "assistant", "user"]
        assert body["messages"][1]["content"][2] == {
            "type": "tool_use",
            "id": "call_b",
            "name": "add",
            "input": {"a": 1, "b": 2},
        }
        assert [b["tool_use_id"] for b in body["messages"][2]["content"]] == ["call_a", "call_b"]
    llm_vendor.script.assert_done()


async def test_429_waits_for_retry_after_then_succeeds(llm_vendor: LLMVendor) -> None:
    llm_vendor.script.error(429, retry_after=0.2).reply("finally")
    provider = llm_vendor.provider()

    started = time.monotonic()
    _, response = await collect(provider, ask())
    waited = time.monotonic() - started

    assert response.text == "finally"
    assert waited >= 0.2
    assert len(llm_vendor.script.requests) == 2
    llm_vendor.script.assert_done()


async def test_server_errors_are_retried(llm_vendor: LLMVendor) -> None:
    overloaded = 529 if llm_vendor.kind == "anthropic" else 503
    llm_vendor.script.error(500).error(overloaded).reply("recovered")
    provider = llm_vendor.provider()

    _, response = await collect(provider, ask())

    assert response.text == "recovered"
    assert len(llm_vendor.script.requests) == 3


async def test_retries_give_up_after_max_retries(llm_vendor: LLMVendor) -> None:
    llm_vendor.script.error(500).error(500)
    provider = llm_vendor.provider(max_retries=1)

    with pytest.raises(ServerError) as caught:
        await collect(provider, ask())

    assert caught.value.status == 500
    assert len(llm_vendor.script.requests) == 2


def test_retry_waits_come_from_the_backoff_and_retry_after_from_the_server() -> None:
    def policy(draw: float) -> RetryPolicy:
        return RetryPolicy(max_retries=3, backoff=Backoff(first=0.5, cap=4.0, jitter=EQUAL_JITTER, random=lambda: draw))

    failed = ServerError("boom", retryable=True)
    assert [policy(1.0).delay(n, failed) for n in range(4)] == [0.5, 1.0, 2.0, None]
    assert [policy(0.0).delay(n, failed) for n in range(3)] == [0.25, 0.5, 1.0]  # half to all of the step
    assert policy(1.0).delay(0, RateLimited("slow down", retryable=True, retry_after=3)) == pytest.approx(3.3)
    assert policy(0.0).delay(0, RateLimited("slow down", retryable=True, retry_after=5)) is None  # above the cap


async def test_retry_after_longer_than_allowed_fails_at_once(llm_vendor: LLMVendor) -> None:
    # The openai SDK would give up silently on anything above 120 s; we say why.
    llm_vendor.script.error(429, retry_after=300)
    provider = llm_vendor.provider(retry_max_wait_seconds=30)

    with pytest.raises(RateLimited) as caught:
        await collect(provider, ask())

    assert caught.value.retry_after == pytest.approx(300)
    assert "retry_max_wait_seconds" in str(caught.value)
    assert len(llm_vendor.script.requests) == 1


async def test_connection_dropped_mid_stream_offers_a_restart_first(llm_vendor: LLMVendor) -> None:
    llm_vendor.script.drop(after_chunks=2)
    provider = llm_vendor.provider()

    seen = await events_until_restart(provider, ask())

    assert [type(e) for e in seen] == [TextDelta, TextDelta, Restarted]
    assert isinstance(seen[-1], Restarted) and isinstance(seen[-1].error, StreamInterrupted)
    assert len(llm_vendor.script.requests) == 1, "a caller that refuses the restart costs no new request"
    llm_vendor.script.assert_done()


async def test_drop_after_text_is_restarted_for_a_caller_that_accepts(llm_vendor: LLMVendor) -> None:
    llm_vendor.script.drop(after_chunks=2).reply("the whole answer")
    provider = llm_vendor.provider()

    deltas, response = await collect(provider, ask())

    assert "".join(deltas) == response.text == "the whole answer"
    assert len(llm_vendor.script.requests) == 2


async def test_drop_before_any_text_is_retried(llm_vendor: LLMVendor) -> None:
    llm_vendor.script.drop(after_chunks=0).reply("second try")
    provider = llm_vendor.provider()

    _, response = await collect(provider, ask())

    assert response.text == "second try"
    assert len(llm_vendor.script.requests) == 2


async def test_stream_ended_without_its_end_marker_is_interrupted(llm_vendor: LLMVendor) -> None:
    # A body that ends cleanly but early (a proxy giving up) must not pass as a whole answer.
    llm_vendor.script.drop(after_chunks=2, clean=True)
    provider = llm_vendor.provider(max_retries=0)

    deltas: list[str] = []
    with pytest.raises(StreamInterrupted, match="before the answer was complete"):
        async for event in provider.stream(ask()):
            if isinstance(event, TextDelta):
                deltas.append(event.text)

    assert len(deltas) == 2


async def test_truncated_stream_before_any_text_is_retried(llm_vendor: LLMVendor) -> None:
    llm_vendor.script.drop(after_chunks=0, clean=True).reply("whole")
    provider = llm_vendor.provider()

    _, response = await collect(provider, ask())

    assert response.text == "whole"
    assert len(llm_vendor.script.requests) == 2


async def test_error_inside_the_stream_is_retried_then_mapped(llm_vendor: LLMVendor) -> None:
    llm_vendor.script.error(500, mid_stream=True, message="boom inside").reply("recovered")
    provider = llm_vendor.provider()
    _, response = await collect(provider, ask())
    assert response.text == "recovered"

    llm_vendor.script.error(500, mid_stream=True, message="boom inside")
    with pytest.raises(ServerError, match="boom inside"):
        await collect(llm_vendor.provider(max_retries=0), ask())


async def test_slow_first_token_times_out_and_is_retried(llm_vendor: LLMVendor) -> None:
    llm_vendor.script.reply("too late", first_token_delay=1.0).reply("on time")
    provider = llm_vendor.provider(timeout_seconds=0.3)

    _, response = await collect(provider, ask())

    assert response.text == "on time"


async def test_refused_connection_is_unavailable_not_a_timeout(llm_vendor: LLMVendor, closed_port: int) -> None:
    # The SDKs' aiohttp transport reports a refused connect (or a failed DNS lookup) as a
    # connect *timeout*; operators should read "cannot connect", with the reason.
    provider = llm_vendor.provider(base_url=f"http://127.0.0.1:{closed_port}/v1", max_retries=0)

    with pytest.raises(ProviderUnavailable, match=r"cannot connect .*Cannot connect to host 127\.0\.0\.1"):
        await collect(provider, ask())


async def test_auth_error_is_not_retried(llm_vendor: LLMVendor) -> None:
    provider = llm_vendor.provider(api_key="sk-wrong")

    with pytest.raises(AuthError) as caught:
        await collect(provider, ask())

    assert caught.value.status == 401
    assert "sk-wrong" not in str(caught.value)
    assert len(llm_vendor.script.requests) == 1


async def test_malformed_tool_arguments_are_passed_through_raw(llm_vendor: LLMVendor) -> None:
    broken = '{"a": 1, "b": '
    llm_vendor.script.tool_calls(ScriptedCall("add", broken, id="call_x")).reply("sorry")
    provider = llm_vendor.provider()

    _, response = await collect(provider, ask("add", tools=TOOLS))
    assert response.tool_calls == (ToolCall(id="call_x", name="add", arguments=broken),)

    # The loop reports the bad arguments back; the broken call must replay without error.
    retry = ModelRequest(
        system="sys",
        tools=TOOLS,
        messages=[
            UserMessage(text="add"),
            AssistantMessage(tool_calls=response.tool_calls),
            ToolResultsMessage(
                results=(ToolResult(call_id="call_x", name="add", content="invalid JSON", is_error=True),)
            ),
        ],
    )
    _, answer = await collect(provider, retry)
    assert answer.text == "sorry"
    body = llm_vendor.script.requests[1].body
    if llm_vendor.kind == "anthropic":
        assert body["messages"][2]["content"][0]["is_error"] is True
    else:
        assert body["messages"][-1]["content"].startswith("ERROR:")


async def test_non_streaming_complete(llm_vendor: LLMVendor) -> None:
    llm_vendor.script.error(429, retry_after=0.05).reply("plain answer")
    llm_vendor.script.tool_calls(ScriptedCall("get_time", {"tz": "UTC"}, id="call_t"))
    provider = llm_vendor.provider()

    answer = await provider.complete(ask())
    calls = await provider.complete(ask("time?", tools=TOOLS))

    assert answer.text == "plain answer" and answer.stop_reason == "end"
    assert answer.usage.input_tokens > 0
    assert calls.stop_reason == "tool_use"
    assert [(c.name, json.loads(c.arguments)) for c in calls.tool_calls] == [("get_time", {"tz": "UTC"})]
    assert not any(r.stream for r in llm_vendor.script.requests)
    llm_vendor.script.assert_done()


async def test_unexpected_call_fails_loudly(llm_vendor: LLMVendor) -> None:
    provider = llm_vendor.provider()

    with pytest.raises(BadRequest, match="unexpected request"):
        await collect(provider, ask())

    assert len(llm_vendor.script.unexpected) == 1


async def test_anthropic_caches_the_stable_prefix(llm_anthropic: LLMVendor) -> None:
    llm_anthropic.script.reply("one").reply("two")
    provider = llm_anthropic.provider()

    _, first = await collect(provider, ask("first", tools=TOOLS))
    _, second = await collect(provider, ask("second", tools=TOOLS))

    body = llm_anthropic.script.requests[0].body
    assert body["system"][0]["cache_control"] == {"type": "ephemeral"}
    assert body["tools"][-1]["cache_control"] == {"type": "ephemeral"}
    assert "cache_control" not in body["tools"][0]
    headers = llm_anthropic.script.requests[0].headers
    assert "sk-test-key" in (headers.get("x-api-key") or headers["authorization"])
    assert "anthropic-version" in headers
    assert first.usage.cache_write_tokens > 0 and first.usage.cache_read_tokens == 0
    assert second.usage.cache_read_tokens == first.usage.cache_write_tokens
    assert second.usage.input_tokens >= second.usage.cache_read_tokens


async def test_anthropic_overloaded_event_inside_the_stream_is_retried(llm_anthropic: LLMVendor) -> None:
    llm_anthropic.script.error(529, mid_stream=True).reply("after the overload")
    provider = llm_anthropic.provider()

    _, response = await collect(provider, ask())

    assert response.text == "after the overload"
    assert len(llm_anthropic.script.requests) == 2


async def test_anthropic_overloaded_event_maps_to_server_error(llm_anthropic: LLMVendor) -> None:
    llm_anthropic.script.error(529, mid_stream=True)
    provider = llm_anthropic.provider(max_retries=0)

    with pytest.raises(ServerError) as caught:
        await collect(provider, ask())

    assert caught.value.status == 529 and "Overloaded" in str(caught.value)


async def test_error_event_after_text_restarts_and_the_answer_arrives_whole(llm_vendor: LLMVendor) -> None:
    # The reported case: an early overloaded_error (Anthropic) / error chunk (OpenAI) after the
    # first words, long before the user could have been shown anything.
    status = 529 if llm_vendor.kind == "anthropic" else 500
    llm_vendor.script.error(status, mid_stream=True, partial="Echo: [s").reply("Echo: [sent] hello")
    provider = llm_vendor.provider()
    seen: list[StreamEvent] = []
    requests_at_restart: list[int] = []

    async for event in provider.stream(ask()):
        seen.append(event)
        if isinstance(event, Restarted):
            requests_at_restart.append(len(llm_vendor.script.requests))

    restarts = [e for e in seen if isinstance(e, Restarted)]
    assert len(restarts) == 1 and isinstance(restarts[0].error, ServerError)
    assert not isinstance(restarts[0].error, StreamInterrupted)
    assert requests_at_restart == [1], "Restarted comes before the back-off and the new request"
    after = seen[seen.index(restarts[0]) + 1 :]
    assert "".join(e.text for e in after if isinstance(e, TextDelta)) == "Echo: [sent] hello"
    assert isinstance(seen[-1], Finished) and seen[-1].response.text == "Echo: [sent] hello"
    assert len(llm_vendor.script.requests) == 2
    llm_vendor.script.assert_done()


@pytest.mark.parametrize(("status", "error"), [(500, ServerError), (429, RateLimited)])
async def test_error_inside_a_stream_after_text_keeps_its_own_name(
    llm_vendor: LLMVendor, status: int, error: type[ProviderError]
) -> None:
    llm_vendor.script.error(status, mid_stream=True, partial="Echo: [s")
    provider = llm_vendor.provider(max_retries=0)

    with pytest.raises(error) as caught:
        await collect(provider, ask())

    assert not isinstance(caught.value, StreamInterrupted) and caught.value.status == status


async def test_anthropic_overloaded_event_after_text_is_overloaded(llm_anthropic: LLMVendor) -> None:
    llm_anthropic.script.error(529, mid_stream=True, partial="Echo: [s")
    provider = llm_anthropic.provider(max_retries=0)

    with pytest.raises(Overloaded) as caught:
        await collect(provider, ask())

    assert caught.value.status == 529


async def test_restarts_after_text_count_against_the_retry_budget(llm_vendor: LLMVendor) -> None:
    llm_vendor.script.error(500, mid_stream=True, partial="one").error(500, mid_stream=True, partial="two")
    provider = llm_vendor.provider(max_retries=1)

    with pytest.raises(ServerError):
        await collect(provider, ask())

    assert len(llm_vendor.script.requests) == 2
    llm_vendor.script.assert_done()


async def test_404_is_not_found(llm_vendor: LLMVendor) -> None:
    # A base_url missing /v1 (OpenAI-compatible servers) or with one too many (Anthropic).
    base = llm_vendor.fake.base_url
    wrong = base.removesuffix("/v1") if llm_vendor.kind == "openai" else f"{base}/v1"
    provider = llm_vendor.provider(base_url=wrong)

    with pytest.raises(NotFound) as caught:
        await collect(provider, ask())
    assert caught.value.status == 404
    with pytest.raises(NotFound):
        await provider.complete(ask())


async def test_chain_falls_over_to_the_fallback(llm_openai: LLMVendor, llm_anthropic: LLMVendor) -> None:
    llm_openai.script.error(500).error(500)
    llm_anthropic.script.reply("from the fallback")
    chain = ProviderChain(llm_openai.provider("gpt", max_retries=1), [llm_anthropic.provider("claude")])

    deltas, response = await collect(chain, ask(model="gpt-special"))

    assert response.text == "from the fallback" and "".join(deltas) == response.text
    assert len(llm_openai.script.requests) == 2
    # The model override belongs to the primary; the fallback uses its own model.
    assert llm_anthropic.script.requests[0].body["model"] == "anthropic-test-model"
    assert llm_openai.script.requests[0].body["model"] == "gpt-special"


async def test_chain_does_not_fall_over_after_text_was_shown(llm_openai: LLMVendor, llm_anthropic: LLMVendor) -> None:
    llm_openai.script.drop(after_chunks=1)
    chain = ProviderChain(llm_openai.provider("gpt", max_retries=0), [llm_anthropic.provider("claude")])

    seen = await events_until_restart(chain, ask())

    assert isinstance(seen[-1], Restarted) and isinstance(seen[-1].error, StreamInterrupted)
    assert llm_anthropic.script.requests == []


async def test_chain_falls_over_for_a_stream_that_failed_before_text_was_shown(
    llm_openai: LLMVendor, llm_anthropic: LLMVendor
) -> None:
    llm_openai.script.error(500, mid_stream=True, partial="Echo: [s")
    llm_anthropic.script.reply("from the fallback")
    chain = ProviderChain(llm_openai.provider("gpt", max_retries=0), [llm_anthropic.provider("claude")])

    deltas, response = await collect(chain, ask())

    assert "".join(deltas) == response.text == "from the fallback"
    assert len(llm_openai.script.requests) == 1 and len(llm_anthropic.script.requests) == 1


async def test_chain_raises_the_last_error_and_complete_falls_over(
    llm_openai: LLMVendor, llm_anthropic: LLMVendor
) -> None:
    llm_openai.script.error(400).error(401)
    llm_anthropic.script.error(529).reply("complete via fallback")
    chain = ProviderChain(llm_openai.provider("gpt", max_retries=0), [llm_anthropic.provider("claude", max_retries=0)])

    with pytest.raises(ServerError) as caught:
        await collect(chain, ask())
    assert caught.value.status == 529

    assert (await chain.complete(ask())).text == "complete via fallback"


async def test_build_chain_from_config(llm_openai: LLMVendor, llm_anthropic: LLMVendor) -> None:
    section = {"gpt": llm_openai.section(), "claude": llm_anthropic.section()}
    chain = build_chain("gpt", ["claude"], section)
    try:
        assert isinstance(chain, ProviderChain)
        assert [p.name for p in chain.providers] == ["gpt", "claude"]
        alone = build_chain("claude", [], section)
        assert not isinstance(alone, ProviderChain) and alone.name == "claude"
        await alone.aclose()
    finally:
        await chain.aclose()


def test_build_errors_name_the_key(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigError, match=r"agent.fallback: no \[providers.nope\]"):
        build_chain("a", ["nope"], {"a": {"kind": "openai", "model": "m"}})
    with pytest.raises(ConfigError, match=r"providers\.a\.temperature"):
        build_provider("a", {"kind": "openai", "model": "m", "temperature": 1})
    with pytest.raises(ConfigError, match=r"providers\.a\.kind"):
        build_provider("a", {"kind": "gemini", "model": "m"})
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    with pytest.raises(ConfigError, match="ANTHROPIC_API_KEY"):
        build_provider("a", {"kind": "anthropic", "model": "m"})
    with pytest.raises(ConfigError) as caught:
        build_provider("a", {"kind": "openai", "model": "m", "api_key": "sk-secret", "timeout_seconds": -1})
    assert "sk-secret" not in str(caught.value)
    assert not issubclass(PluginError, ProviderError)


def test_parse_retry_after_seconds_and_http_date() -> None:
    assert parse_retry_after({"retry-after": "1.5"}) == 1.5
    assert parse_retry_after({"retry-after-ms": "250", "retry-after": "9"}) == 0.25
    in_a_minute = parse_retry_after({"retry-after": formatdate(time.time() + 60, usegmt=True)})
    assert in_a_minute is not None and 55 <= in_a_minute <= 61
    assert parse_retry_after({"retry-after": "soon"}) is None
    assert parse_retry_after({}) is None


async def test_echo_mode_with_scripted_tool(llm_openai: LLMVendor) -> None:
    """The manual-demo mode of the fake: a tool call per user message, then an echo."""
    script: LLMScript = llm_openai.script
    script.default = "echo"
    script.echo_tool = ScriptedCall("get_time", {"tz": "UTC"})
    provider = llm_openai.provider()

    _, call = await collect(provider, ask("what time?", tools=TOOLS))
    assert call.tool_calls[0].name == "get_time"
    _, echoed = await collect(
        provider,
        ModelRequest(
            system="s",
            messages=[
                UserMessage(text="what time?"),
                AssistantMessage(tool_calls=call.tool_calls),
                ToolResultsMessage(
                    results=(ToolResult(call_id=call.tool_calls[0].id, name="get_time", content="noon"),)
                ),
            ],
        ),
    )
    assert echoed.text == "echo: noon"


# ---------------------------------------------------------------------------- probes (doctor)
def _probe_class(kind: str) -> type[OpenAIProvider] | type[AnthropicProvider]:
    return OpenAIProvider if kind == "openai" else AnthropicProvider


async def test_probe_names_the_model_that_answered(llm_vendor: LLMVendor) -> None:
    llm_vendor.script.reply("p")  # Anthropic's probe is a one-token message; OpenAI's lists models
    check = await _probe_class(llm_vendor.kind).probe("main", llm_vendor.section(), timeout=5)

    assert isinstance(_probe_class(llm_vendor.kind), Probing)
    assert check.what == "provider main"
    if llm_vendor.kind == "openai":  # the fake lists only "fake-model"
        assert check.status == "WARNING" and "1 model(s), but not 'openai-test-model'" in check.detail
        assert check.fix == "check [providers.main] model"
        ok = await OpenAIProvider.probe("main", llm_vendor.section(model="fake-model"), timeout=5)
        assert ok.status == "ok" and "'fake-model' listed" in ok.detail and ok.fix == ""
    else:
        assert check.status == "ok" and "answered" in check.detail and check.fix == ""
        assert llm_vendor.script.requests[0].body["max_tokens"] == 1


async def test_probe_of_a_refused_key_says_so_without_the_key(llm_vendor: LLMVendor) -> None:
    check = await _probe_class(llm_vendor.kind).probe("main", llm_vendor.section(api_key="sk-wrong-1234"), timeout=5)

    assert check.status == "ERROR" and "HTTP 401" in check.detail and "API key was refused" in check.detail
    assert "[providers.main] api_key" in check.fix
    assert "sk-wrong-1234" not in check.detail + check.fix


async def test_probe_of_a_base_url_without_v1_asks_about_it(llm_openai: LLMVendor) -> None:
    base = llm_openai.fake.base_url.removesuffix("/v1")
    check = await OpenAIProvider.probe("local", llm_openai.section(base_url=base), timeout=5)

    assert check.status == "ERROR" and "HTTP 404" in check.detail and "is base_url missing /v1?" in check.detail
    assert check.fix == f"set [providers.local] base_url = '{base}/v1'"


async def test_probe_where_nothing_listens(llm_vendor: LLMVendor, closed_port: int) -> None:
    url = f"http://127.0.0.1:{closed_port}/v1"
    check = await _probe_class(llm_vendor.kind).probe("main", llm_vendor.section(base_url=url), timeout=5)

    assert check.status == "ERROR" and check.detail == f"nothing answers at {url} (connection refused)"
    assert "base_url" in check.fix


async def test_probe_of_a_failing_server(llm_anthropic: LLMVendor) -> None:
    llm_anthropic.script.error(503)  # the OpenAI fake's /v1/models does not follow the script
    check = await AnthropicProvider.probe("main", llm_anthropic.section(), timeout=5)

    assert check.status == "ERROR" and check.detail == "HTTP 503: the provider is failing"


async def test_probe_of_an_invalid_or_unresolved_section_names_the_key() -> None:
    bad = await OpenAIProvider.probe("main", {"kind": "openai", "model": ""}, timeout=1)
    assert bad.status == "ERROR" and "providers.main.model" in bad.detail

    unset = Unresolved("${NO_KEY_HERE}", "invalid config: providers.main.api_key: environment variable NO_KEY_HERE")
    check = await OpenAIProvider.probe("main", {"kind": "openai", "model": "m", "api_key": unset}, timeout=1)
    assert check.status == "ERROR" and "NO_KEY_HERE" in check.detail


# ---------------------------------------------------------------------------- what the chat says
@pytest.mark.parametrize(
    ("status", "message", "says", "never"),
    [
        (401, "Incorrect API key", ["(HTTP 401)", "API key was refused", "[providers.local] api_key"], "/new"),
        (404, "404 page not found", ["404 Not Found", "[providers.local] model and base_url", "missing /v1?"], "/new"),
        (405, "no such route", ["405 Method Not Allowed", "missing /v1?"], "too long"),
        (429, "slow down", ["rate-limiting", "(HTTP 429)"], "/new"),
        (503, "busy", ["(HTTP 503)", "the provider is failing"], "/new"),
        (400, "Unsupported parameter: 'tools'", ["refused the request (HTTP 400)", "incident"], "too long"),
        (400, "This model's maximum context length is 8192 tokens", ["too long", "/new starts afresh"], "base_url"),
        (413, "request too large", ["too long", "/new starts afresh"], "base_url"),
    ],
)
def test_each_failure_names_its_status_and_cause(status: int, message: str, says: list[str], never: str) -> None:
    reason = provider_failure_reason(from_status("local", status, message), "abc123")

    assert all(s in reason for s in says), reason
    assert never not in reason and message not in reason


def test_a_refused_connection_names_the_providers_base_url() -> None:
    reason = failure_reason(ProviderUnavailable("local: cannot connect", provider="local"))
    assert "nothing answers at [providers.local] base_url" in reason


def test_a_context_length_error_is_its_own_kind() -> None:
    assert isinstance(from_status("p", 400, "prompt is too long: 210000 tokens > 200000 maximum"), ContextTooLong)
    assert type(from_status("p", 400, "messages: at least one message is required")) is BadRequest
