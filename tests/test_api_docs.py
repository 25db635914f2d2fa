"""docs/API.md's HTTP examples run as written (curl and the ``openai`` SDK) against a hub whose
agent answers from the fake model: only the address and the key are filled in."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from hub.app import Hub
from hub.config import load_settings
from tests.fakes.llm_script import LLMScript
from tests.fakes.openai_server import FakeOpenAI

DOC = Path(__file__).parents[1] / "docs" / "API.md"
KEY = "sk-docs-example-key"
ADMIN = "sk-docs-admin-key"


def section(title: str) -> str:
    text = DOC.read_text()
    start = text.index(f"\n## {title}")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else len(text)]


def blocks(text: str, lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", text, flags=re.S)


@pytest.fixture
async def hub_url(tmp_path: Path) -> AsyncIterator[tuple[str, LLMScript]]:
    script = LLMScript(default="echo", api_key="sk-local")
    async with FakeOpenAI(script) as llm:
        settings = load_settings(
            environ={},
            user_file=False,
            overrides={
                "hub": {"data_dir": str(tmp_path / "data")},
                "server": {"port": 0, "api_keys": [KEY], "admin_keys": [ADMIN]},
                "providers": {
                    "local": {"kind": "openai", "base_url": llm.base_url, "api_key": "sk-local", "model": "m"}
                },
                "agent": {"provider": "local"},
                "tools": {"enabled": ["math"], "workspace": str(tmp_path / "ws")},
            },
        )
        async with Hub(settings) as hub:
            assert hub.gateway is not None
            yield f"http://127.0.0.1:{hub.gateway.bound_port}", script


def _run(command: str, url: str) -> str:
    env = {**os.environ, "AUTOHANDS_API_KEY": KEY, "AUTOHANDS_ADMIN_KEY": ADMIN}
    done = subprocess.run(
        ["bash", "-c", command.replace("http://127.0.0.1:8080", url)],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
async def test_the_curl_examples_answer(hub_url: tuple[str, LLMScript]) -> None:
    url, _script = hub_url
    plain, streamed = blocks(section("OpenAI-compatible HTTP API"), "sh")
    answer: Any = await asyncio.to_thread(_run, plain, url)
    assert '"object":"chat.completion"' in answer.replace(" ", "") and "Say hello" in answer
    events = await asyncio.to_thread(_run, streamed, url)
    assert "chat.completion.chunk" in events and events.rstrip().endswith("data: [DONE]")


async def test_the_python_example_prints_the_answer(
    hub_url: tuple[str, LLMScript], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, _script = hub_url
    [example] = blocks(section("OpenAI-compatible HTTP API"), "python")
    monkeypatch.setenv("AUTOHANDS_API_KEY", KEY)
    code = example.replace("http://127.0.0.1:8080", url)
    await asyncio.to_thread(exec, compile(code, "docs/API.md", "exec"), {})
    assert "Say hello" in capsys.readouterr().out  # the fake model echoes


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
async def test_the_dashboard_example_lists_the_approvals(hub_url: tuple[str, LLMScript]) -> None:
    url, _script = hub_url
    [example] = blocks(section("Dashboard API"), "bash")
    listing = example.splitlines()[0]
    assert listing.startswith("curl") and "/api/admin/approvals" in listing
    out = await asyncio.to_thread(_run, listing, url)
    assert out.strip().startswith(("[", "{"))
