"""Browser tests: Playwright driving Debian's Chromium (``/usr/bin/chromium``, headless) against
a real hub whose web channel serves the chat page, with the agent on the fake OpenAI server.

Skipped, with the reason printed, only when Chromium is missing (Playwright comes with the
``[test]`` extra; ``.ci/run`` installs Chromium with apt, so CI runs them). Set
``AUTOHANDS_SCREENSHOTS=1`` to refresh ``docs/screenshot-chat.png`` from a run.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from playwright.async_api import Browser, Dialog, Page, async_playwright

from hub.app import Hub
from hub.config import Settings, load_settings
from tests.fakes.llm_script import LLMScript
from tests.fakes.openai_server import FakeOpenAI

CHROMIUM = os.environ.get("AUTOHANDS_CHROMIUM", "/usr/bin/chromium")
STEP_MS = 15_000
"""The longest a single wait on the page may take: every test stays well inside its timeout."""


def _missing() -> str | None:
    if not (os.access(CHROMIUM, os.X_OK) or shutil.which(CHROMIUM)):
        return f"chromium is not installed at {CHROMIUM} (.ci/run installs it with apt-get install chromium)"
    return None


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    reason = _missing()
    if reason is None:
        return
    for item in items:
        if "tests/browser/" in str(item.fspath).replace(os.sep, "/"):
            item.add_marker(pytest.mark.skip(reason=reason))


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
        try:
            yield launched
        finally:
            await launched.close()


@dataclass
class PageEvents:
    """What the page did that a test must see: dialogs (an ``alert()`` that ran) and uncaught
    script errors."""

    dialogs: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


@pytest.fixture
def page_events() -> PageEvents:
    return PageEvents()


@pytest.fixture
async def page(browser: Browser, page_events: PageEvents) -> AsyncIterator[Page]:
    context = await browser.new_context(viewport={"width": 1100, "height": 720}, color_scheme="light")
    context.set_default_timeout(STEP_MS)
    opened = await context.new_page()

    async def on_dialog(dialog: Dialog) -> None:
        page_events.dialogs.append(dialog.message)
        await dialog.dismiss()

    opened.on("dialog", on_dialog)
    opened.on("pageerror", lambda error: page_events.errors.append(str(error)))
    try:
        yield opened
    finally:
        await context.close()
    assert page_events.errors == [], "the page threw"


@dataclass
class RunningHub:
    hub: Hub
    llm: FakeOpenAI
    workspace: Path

    @property
    def url(self) -> str:
        assert self.hub.gateway is not None and self.hub.gateway.bound_port is not None
        return f"http://127.0.0.1:{self.hub.gateway.bound_port}/"


def hub_settings(tmp_path: Path, llm: FakeOpenAI, *, port: int = 0, api_keys: tuple[str, ...] = ()) -> Settings:
    workspace = tmp_path / "workspace"
    workspace.mkdir(exist_ok=True)
    (workspace / "notes.txt").write_text("buy milk\n")
    return load_settings(
        environ={},
        overrides={
            "hub": {"data_dir": str(tmp_path / "data")},
            "server": {"enabled": True, "host": "127.0.0.1", "port": port, "api_keys": list(api_keys)},
            "providers": {
                "local": {"kind": "openai", "base_url": llm.base_url, "api_key": "sk-local", "model": "local-model"}
            },
            "agent": {"provider": "local"},
            "tools": {"workspace": str(workspace), "workspace_scope": "shared", "shell": {"allow_commands": ["ls"]}},
            "channels": {"web": {"enabled": True}},
        },
    )


@asynccontextmanager
async def web_hub(tmp_path: Path, script: LLMScript, *, api_keys: tuple[str, ...] = ()) -> AsyncIterator[RunningHub]:
    """A hub as ``autohands run`` builds it, its agent on the fake OpenAI server driven by
    ``script``; without keys the server is open and loopback-only (the page is the local
    operator), with keys the page must sign in."""
    async with FakeOpenAI(script) as llm, Hub(hub_settings(tmp_path, llm, api_keys=api_keys)) as hub:
        yield RunningHub(hub=hub, llm=llm, workspace=tmp_path / "workspace")
