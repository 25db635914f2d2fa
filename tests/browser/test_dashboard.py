"""The operator's dashboard (hub/dashboard) in a real browser: a job is listed and cancelled,
a pending approval is approved with a click and the run goes on. Saves
``docs/screenshot-dashboard.png``. The server is open (loopback, keyless), so the page is this
machine's operator, as after a plain ``autohands run``."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from playwright.async_api import Page, expect

from hub.app import Hub
from tests.browser.conftest import PageEvents, hub_settings
from tests.fakes.llm_script import LLMScript, ScriptedCall
from tests.fakes.openai_server import FakeOpenAI
from tests.hub.conftest import RecordingChannel

SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "screenshot-dashboard.png"


def dashboard_url(hub: Hub) -> str:
    assert hub.gateway is not None
    return f"http://127.0.0.1:{hub.gateway.bound_port}/dashboard"


async def test_the_dashboard_lists_a_job_and_cancels_it(page: Page, page_events: PageEvents, tmp_path: Path) -> None:
    ch = RecordingChannel()
    async with FakeOpenAI(LLMScript()) as llm, Hub(hub_settings(tmp_path, llm), channels={ch.name: ch}) as hub:
        await ch.say("in 3 hours water the plants", kind="command", command="remind")
        await ch.wait_sent(1)
        await page.goto(dashboard_url(hub) + "#jobs")
        row = page.locator("[data-testid=jobs] tbody tr")
        await expect(row).to_have_count(1)
        await expect(row).to_contain_text("water the plants")
        await row.get_by_role("button", name="Cancel").click()
        await row.get_by_role("button", name="Confirm cancel").click()
        await expect(page.locator("#jobs-empty")).to_be_visible()
        assert hub.scheduler is not None and await hub.scheduler.list_jobs() == []
    assert page_events.dialogs == []  # the page confirms in place, never with a dialog


async def test_an_approval_is_approved_with_a_click(page: Page, tmp_path: Path) -> None:
    script = LLMScript(api_key="sk-local")
    script.tool_calls(ScriptedCall("run_command", {"command": "ls"}, id="call_1"))
    script.reply("You have one file: notes.txt.")
    ch = RecordingChannel()
    async with FakeOpenAI(script) as llm, Hub(hub_settings(tmp_path, llm), channels={ch.name: ch}) as hub:
        await ch.say("which files do I have?", user="alice")
        await ch.say("in 2 hours stand up and stretch", kind="command", command="remind", chat="team")
        async with asyncio.timeout(15):  # the question has been asked
            while not any(m.buttons for m in ch.sent):
                await ch.wait_sent(len(ch.sent) + 1, timeout=15)
        await page.goto(dashboard_url(hub) + "#approvals")
        card = page.locator("[data-testid=approvals] article")
        await expect(card).to_have_count(1)
        await expect(card).to_contain_text("run_command")
        await expect(page.locator("#approvals-count")).to_have_text("1")
        if os.environ.get("AUTOHANDS_SCREENSHOTS"):  # refresh docs/screenshot-dashboard.png
            await page.screenshot(path=str(SCREENSHOT), full_page=True)
        await card.get_by_role("button", name="Approve").click()
        await expect(card).to_contain_text("Approve: sent to rec:c1")
        async with asyncio.timeout(15):  # the run goes on: its answer arrives
            while "You have one file: notes.txt." not in ch.texts():
                await ch.wait_sent(len(ch.sent) + 1, timeout=15)
    script.assert_done()
    [result] = [m for m in script.requests[1].body["messages"] if m["role"] == "tool"]
    assert "notes.txt" in result["content"]
