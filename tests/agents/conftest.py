"""Fixtures for agent tests: the fake model servers and providers pointed at them."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from agents.providers.base import Provider
from agents.providers.factory import build_provider
from tests.fakes.anthropic_server import FakeAnthropic
from tests.fakes.llm_script import FakeLLMServer, LLMScript
from tests.fakes.openai_server import FakeOpenAI

LLM_TEST_KEY = "sk-test-key"


@dataclass
class LLMVendor:
    """One fake vendor plus a factory of providers pointed at it (closed after the test)."""

    kind: str
    fake: FakeLLMServer
    opened: list[Provider] = field(default_factory=list)

    @property
    def script(self) -> LLMScript:
        return self.fake.script

    def section(self, **overrides: Any) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "model": f"{self.kind}-test-model",
            "api_key": LLM_TEST_KEY,
            "base_url": self.fake.base_url,
            "retry_initial_wait_seconds": 0.01,
            "timeout_seconds": 5,
            **overrides,
        }

    def provider(self, name: str = "main", **overrides: Any) -> Provider:
        provider = build_provider(name, self.section(**overrides))
        self.opened.append(provider)
        return provider


async def _vendor(kind: str) -> AsyncIterator[LLMVendor]:
    fake_cls: Callable[[LLMScript], FakeLLMServer] = FakeOpenAI if kind == "openai" else FakeAnthropic
    async with fake_cls(LLMScript(api_key=LLM_TEST_KEY)) as fake:
        vendor = LLMVendor(kind, fake)
        try:
            yield vendor
        finally:
            for provider in vendor.opened:
                await provider.aclose()


@pytest.fixture(params=["openai", "anthropic"])
async def llm_vendor(request: pytest.FixtureRequest) -> AsyncIterator[LLMVendor]:
    """Each test using it runs once against each vendor's fake, through the real SDK."""
    async for vendor in _vendor(request.param):
        yield vendor


@pytest.fixture
async def llm_openai() -> AsyncIterator[LLMVendor]:
    async for vendor in _vendor("openai"):
        yield vendor


@pytest.fixture
async def llm_anthropic() -> AsyncIterator[LLMVendor]:
    async for vendor in _vendor("anthropic"):
        yield vendor
