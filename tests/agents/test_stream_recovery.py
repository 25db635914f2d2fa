"""A streamed answer survives a failure the user has not seen, and says so when they have.

Runs ``build_agent`` through the real openai / anthropic SDKs against the local fakes, plus
the scripted provider for what no fake can stage (a stream that hangs after its first text).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from agents.build import build_agent
from agents.config import AgentConfig
from agents.providers.errors import (
    AuthError,
    BadRequest,
    ContextTooLong,
    NotFound,
    Overloaded,
    ProviderTimeout,
    ProviderUnavailable,
    RateLimited,
    ServerError,
    StreamInterrupted,
)
from agents.runtime import LLMAgent, ResolvedModel
from agents.tools.base import ToolRegistry
from hub.agent import AgentServices
from hub.commands import CommandRegistry
from hub.errors import ProviderError
from hub.messages import Outbound
from tests.agents.conftest import LLMVendor
from tests.agents.fake_run_context import FakeRunContext, collect, inbound
from tests.agents.scripted import ScriptedProvider

SORRY = "Sorry, I could not finish: "
INCOMPLETE = "⚠️ The answer above is incomplete: "


def agent_for(tmp_path: Path, providers: dict[str, Any], **agent: Any) -> LLMAgent:
    services = AgentServices(
        agent_config={"provider": "main", **agent},
        providers_config=providers,
        tools_config={"enabled": []},
        commands=CommandRegistry(),
        data_dir=tmp_path,
    )
    built = build_agent(services, environ={})
    assert isinstance(built, LLMAgent)
    return built


async def run(agent: LLMAgent, text: str = "hello") -> list[Outbound]:
    try:
        return await collect(agent, FakeRunContext(inbound(text)))
    finally:
        await agent.aclose()


def split(out: list[Outbound]) -> tuple[list[Outbound], Outbound]:
    """The partials shown, and the one final reply (there must be exactly one)."""
    finals = [o for o in out if o.final]
    assert len(finals) == 1 and out[-1] is finals[0]
    return [o for o in out if not o.final and not o.typing], finals[0]


async def test_early_provider_error_is_retried_and_the_answer_arrives_whole(
    llm_vendor: LLMVendor, tmp_path: Path
) -> None:
    # The reported case: an overloaded_error event (Anthropic) / error chunk (OpenAI) after the
    # first words, before a partial was due (stream_min_chars defaults to 120).
    status = 529 if llm_vendor.kind == "anthropic" else 500
    llm_vendor.script.error(status, mid_stream=True, partial="Echo: [s").reply("Echo: [sent] hello")
    agent = agent_for(tmp_path, {"main": llm_vendor.section()})

    partials, final = split(await run(agent))

    assert final.text == "Echo: [sent] hello"
    assert all(final.text.startswith(p.text) for p in partials)
    assert len(llm_vendor.script.requests) == 2
    llm_vendor.script.assert_done()


async def test_drop_after_text_was_shown_keeps_it_and_says_it_is_incomplete(
    llm_vendor: LLMVendor, tmp_path: Path
) -> None:
    llm_vendor.script.drop(after_chunks=2)  # "This answer wi" reaches the user, then the cut
    agent = agent_for(tmp_path, {"main": llm_vendor.section()}, stream_min_chars=5)

    partials, final = split(await run(agent))

    assert partials and final.stream == partials[-1].stream
    shown, _, notice = final.text.partition("\n\n")
    assert shown.startswith(partials[-1].text)
    assert notice.startswith(INCOMPLETE + "the connection to the model broke off")
    assert SORRY not in final.text
    assert len(llm_vendor.script.requests) == 1, "no second answer once the first was shown"
    llm_vendor.script.assert_done()


async def test_provider_error_after_text_was_shown_is_named_truthfully(
    llm_anthropic: LLMVendor, tmp_path: Path
) -> None:
    llm_anthropic.script.error(529, mid_stream=True, partial="Echo: [sent] hel")
    agent = agent_for(tmp_path, {"main": llm_anthropic.section()}, stream_min_chars=5)

    partials, final = split(await run(agent))

    assert final.text.startswith(partials[-1].text)
    assert INCOMPLETE + "the model provider is overloaded" in final.text
    assert "broke off" not in final.text
    assert len(llm_anthropic.script.requests) == 1


async def test_failure_with_nothing_shown_is_the_apology_alone(llm_vendor: LLMVendor, tmp_path: Path) -> None:
    llm_vendor.script.error(500, mid_stream=True, partial="Echo: [s")
    agent = agent_for(tmp_path, {"main": llm_vendor.section(max_retries=0)})

    partials, final = split(await run(agent))

    assert partials == []
    assert final.text.startswith(SORRY + "the model provider failed on its side")
    assert "Echo" not in final.text and final.stream is None


async def test_404_from_a_base_url_without_v1_says_so(llm_openai: LLMVendor, tmp_path: Path) -> None:
    section = llm_openai.section(base_url=llm_openai.fake.base_url.removesuffix("/v1"))
    agent = agent_for(tmp_path, {"main": section})

    _, final = split(await run(agent))

    assert final.text.startswith(SORRY + "the model provider answered 404 Not Found")
    assert "base_url" in final.text and "/v1" in final.text
    assert "too long" not in final.text


async def test_fallback_takes_over_a_stream_that_failed_before_text_was_shown(
    llm_openai: LLMVendor, llm_anthropic: LLMVendor, tmp_path: Path
) -> None:
    llm_openai.script.error(500, mid_stream=True, partial="Echo: [s")
    llm_anthropic.script.reply("from the backup")
    providers = {"main": llm_openai.section(max_retries=0), "backup": llm_anthropic.section()}
    agent = agent_for(tmp_path, providers, fallback=["backup"])

    partials, final = split(await run(agent))

    assert final.text == "from the backup"
    assert all(final.text.startswith(p.text) for p in partials)
    llm_openai.script.assert_done()
    llm_anthropic.script.assert_done()


async def test_no_fallback_once_text_was_shown(llm_openai: LLMVendor, llm_anthropic: LLMVendor, tmp_path: Path) -> None:
    llm_openai.script.drop(after_chunks=2)
    providers = {"main": llm_openai.section(max_retries=0), "backup": llm_anthropic.section()}
    agent = agent_for(tmp_path, providers, fallback=["backup"], stream_min_chars=5)

    partials, final = split(await run(agent))

    assert partials and final.text.startswith(partials[-1].text) and INCOMPLETE in final.text
    assert llm_anthropic.script.requests == []


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        (AuthError("k", status=401), "refused the hub's credentials"),
        (RateLimited("r", status=429), "rate-limiting the hub"),
        (Overloaded("o", status=529), "overloaded right now"),
        (ServerError("s", status=500), "failed on its side"),
        (ProviderTimeout("t"), "took too long to answer"),
        (StreamInterrupted("i"), "the connection to the model broke off"),
        (ProviderUnavailable("u"), "cannot reach the model provider"),
        (NotFound("n", status=404), "answered 404 Not Found"),
        (ContextTooLong("c", status=400), "/new starts afresh"),
        (BadRequest("b", status=400), "refused the request (HTTP 400)"),
        (ProviderError("plugin", status=529), "overloaded right now"),
        (ProviderError("plugin"), "not answering right now"),
    ],
)
async def test_each_kind_of_failure_has_its_own_sentence(error: ProviderError, reason: str) -> None:
    provider = ScriptedProvider().fail(error)
    agent = LLMAgent(lambda _: ResolvedModel(provider), ToolRegistry(), AgentConfig())

    _, final = split(await collect(agent, FakeRunContext()))

    assert final.text.startswith(SORRY) and reason in final.text and "incident" in final.text


async def test_timeout_with_text_received_but_not_shown_sends_no_fragment() -> None:
    never = asyncio.Event()
    provider = ScriptedProvider().reply("Echo: [sent] hello", chunks=3, gate=never, gate_at=2)
    agent = LLMAgent(
        lambda _: ResolvedModel(provider), ToolRegistry(), AgentConfig(timeout_seconds=0.05, stream_min_chars=100)
    )

    partials, final = split(await collect(agent, FakeRunContext()))

    assert partials == []
    assert final.text == SORRY + "this took longer than the 0.05 s limit for one request."
