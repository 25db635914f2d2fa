"""The dashboard's Memories tab (hub/dashboard/memory.py, static/dashboard.js) in a real browser:
a seeded user's memory is listed (as text, never as HTML), found by a search, and forgotten with
a click and a confirming click. The server is open (loopback, keyless), as after a plain
``autohands run``."""

from __future__ import annotations

from pathlib import Path

from playwright.async_api import Page, expect

from hub.app import Hub
from hub.memory import Scope
from tests.browser.conftest import PageEvents, hub_settings
from tests.browser.test_dashboard import dashboard_url
from tests.fakes.llm_script import LLMScript
from tests.fakes.openai_server import FakeOpenAI

ALICE = Scope.user("telegram", "100")
BOB = Scope.user("telegram", "200")


async def test_a_users_memory_is_listed_and_forgotten(page: Page, page_events: PageEvents, tmp_path: Path) -> None:
    async with FakeOpenAI(LLMScript()) as llm, Hub(hub_settings(tmp_path, llm)) as hub:
        assert hub.memory is not None
        backend = hub.memory.backend
        cat = await backend.store(
            "My cat is <b>Miso</b><img src=x onerror=alert(1)>", scope=ALICE, source="remember", scopes=[ALICE]
        )
        bakery = await backend.store("I work at the bakery", scope=ALICE, source="remember", scopes=[ALICE])
        await backend.store("Bob plays chess", scope=BOB, source="remember", scopes=[BOB])

        await page.goto(dashboard_url(hub) + "#memories")
        scopes = page.locator("[data-testid=memory-scopes] tbody tr")
        await expect(scopes).to_have_count(2)
        await expect(scopes.first).to_contain_text("user telegram:100")
        await scopes.first.get_by_role("button", name="user telegram:100").click()

        rows = page.locator("[data-testid=memories] tbody tr")
        await expect(rows).to_have_count(2)
        mine = page.locator(f"tr[data-memory='{cat.id}']")
        await expect(mine).to_contain_text("My cat is <b>Miso</b><img src=x onerror=alert(1)>")  # as text
        await expect(mine).to_contain_text("remember")

        search = page.locator("#memory-search")
        await search.get_by_label("Search memories").fill("bakery")
        await search.get_by_role("button", name="Search").click()
        await expect(rows).to_have_count(1)
        await expect(rows.first).to_contain_text("I work at the bakery")
        await search.get_by_label("Search memories").fill("")
        await search.get_by_role("button", name="Search").click()
        await expect(rows).to_have_count(2)

        await mine.get_by_role("button", name="Forget").click()
        await mine.get_by_role("button", name="Confirm forget").click()
        await expect(rows).to_have_count(1)
        await expect(page.locator(f"tr[data-memory='{cat.id}']")).to_have_count(0)
        await expect(scopes.first).to_contain_text("1")
        assert {m.id for m in await backend.list(scopes=[ALICE])} == {bakery.id}
        assert len(await backend.list(scopes=[BOB])) == 1  # another user's memory stays
    assert page_events.dialogs == []  # nothing a user wrote ran as script
