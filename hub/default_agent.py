"""The agent used when no model provider is configured: it says so, and how to fix it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from .agent import AgentServices, RunContext
from .messages import Outbound

NO_PROVIDER_TEXT = (
    "No model provider is configured, so I can't answer yet. Set OPENAI_API_KEY or "
    "ANTHROPIC_API_KEY in the environment, or add a [providers.<name>] table (kind, api_key, "
    'model, base_url for any OpenAI-compatible server) and [agent] provider = "<name>" to '
    "~/.autohands/config.toml. Commands such as /help work without a model."
)


class NoProviderAgent:
    async def run(self, ctx: RunContext) -> AsyncIterator[Outbound]:
        inbound = ctx.inbound
        yield Outbound(
            conversation=ctx.conversation,
            text=NO_PROVIDER_TEXT,
            format="plain",
            reply_to=inbound.reply_to,
            in_reply_to=inbound.id,
        )


class EchoAgent:
    """Answers with the inbound's text, instantly or after ``delay`` seconds (benchmarks, tests)."""

    def __init__(self, delay: float = 0.0) -> None:
        self.delay = delay

    async def run(self, ctx: RunContext) -> AsyncIterator[Outbound]:
        inbound = ctx.inbound
        if self.delay:
            await asyncio.sleep(self.delay)
        yield Outbound(
            conversation=ctx.conversation,
            text=f"echo: {inbound.text}",
            format="plain",
            reply_to=inbound.reply_to,
            in_reply_to=inbound.id,
        )


def build_no_provider(services: object) -> NoProviderAgent:
    return NoProviderAgent()


def build_echo(services: AgentServices) -> EchoAgent:
    return EchoAgent(delay=float(services.agent_config.get("echo_delay_seconds", 0)))
