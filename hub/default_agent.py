"""The agent used when no model provider is configured: it says so, and how to fix it."""

from __future__ import annotations

from collections.abc import AsyncIterator

from .agent import RunContext
from .messages import Outbound

NO_PROVIDER_TEXT = (
    "No model provider is configured, so I can't answer yet. Set OPENAI_API_KEY or "
    "ANTHROPIC_API_KEY in the environment, or add a [providers.<name>] table (kind, api_key, "
    "model, base_url for any OpenAI-compatible server) and [agent] provider = \"<name>\" to "
    "~/.autohands/config.toml. Commands such as /help work without a model."
)


class NoProviderAgent:
    async def run(self, ctx: RunContext) -> AsyncIterator[Outbound]:
        inbound = ctx.inbound
        yield Outbound(conversation=ctx.conversation, text=NO_PROVIDER_TEXT, format="plain",
                       reply_to=inbound.platform_id or None, in_reply_to=inbound.id)


class EchoAgent:
    """Answers instantly with the inbound's text (benchmarks, tests)."""

    async def run(self, ctx: RunContext) -> AsyncIterator[Outbound]:
        inbound = ctx.inbound
        yield Outbound(conversation=ctx.conversation, text=f"echo: {inbound.text}", format="plain",
                       reply_to=inbound.platform_id or None, in_reply_to=inbound.id)


def build_no_provider(services: object) -> NoProviderAgent:
    return NoProviderAgent()


def build_echo(services: object) -> EchoAgent:
    return EchoAgent()
