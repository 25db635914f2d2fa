"""The agents that need no model: the one that says how to configure a provider, and echo.

``NoProviderAgent`` and its text are the only ones in the house: the ``none`` runtime
(``build_no_provider``) uses it, and so does the ``llm`` runtime (``agents.build``) when no
provider is configured.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence

from pydantic import BaseModel

from .agent import AgentServices, Check, RunContext
from .config import validate_section
from .messages import Outbound

NO_PROVIDER_TEXT = (
    "No model provider is configured, so I can't answer yet. Set OPENAI_API_KEY or "
    "ANTHROPIC_API_KEY in the hub's environment, or add a [providers.<name>] table (kind, model, "
    'api_key, base_url for any OpenAI-compatible server) and [agent] provider = "<name>" to the '
    "config, then restart. Commands such as /help work without a model."
)


class NoProviderAgent:
    """Answers every run with ``NO_PROVIDER_TEXT``.

    Args:
        checks: doctor's rows for the parts that are ready once a provider is (the tools).
    """

    def __init__(self, checks: Sequence[Check] = ()) -> None:
        self._checks = tuple(checks)

    def checks(self) -> Sequence[Check]:
        return self._checks

    async def run(self, ctx: RunContext) -> AsyncIterator[Outbound]:
        inbound = ctx.inbound
        yield Outbound(
            conversation=ctx.conversation,
            text=NO_PROVIDER_TEXT,
            format="plain",
            reply_to_platform_id=inbound.reply_to_platform_id,
            inbound_id=inbound.id,
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
            reply_to_platform_id=inbound.reply_to_platform_id,
            inbound_id=inbound.id,
        )


class EchoConfig(BaseModel):
    """The ``[agent]`` keys the echo runtime reads (it ignores the rest)."""

    echo_delay_seconds: float = 0.0


def build_no_provider(services: AgentServices) -> NoProviderAgent:
    """Entry point ``autohands.agents:none``."""
    return NoProviderAgent()


def build_echo(services: AgentServices) -> EchoAgent:
    """Entry point ``autohands.agents:echo``."""
    return EchoAgent(delay=validate_section(EchoConfig, services.agent_config, "agent").echo_delay_seconds)
