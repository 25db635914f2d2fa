"""The web chat in a real browser (Chromium, headless) against a real hub: streamed answers,
an approval by click, a reload mid-answer, untrusted Markdown rendered inert, and the keys."""

from __future__ import annotations

import os
from pathlib import Path

from playwright.async_api import Locator, Page, expect

from hub.app import Hub
from tests.fakes.llm_script import LLMScript, ScriptedCall
from tests.fakes.openai_server import FakeOpenAI

from .conftest import PageEvents, RunningHub, hub_settings, web_hub

ANSWER = (
    "Sort the entries by their size with `Path.stat()`:\n\n"
    "```python\n"
    "from pathlib import Path\n\n"
    "for entry in sorted(Path('.').iterdir(), key=lambda p: p.stat().st_size):\n"
    "    print(f'{entry.stat().st_size:>10}  {entry.name}')\n"
    "```\n\n"
    "- **Smallest first**; add `reverse=True` for the largest first.\n"
    "- Folders count their own entry, *not* their contents."
)
SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "screenshot-chat.png"


async def open_chat(page: Page, hub: RunningHub) -> None:
    await page.goto(hub.url)
    await expect(page.locator("body")).to_have_attribute("data-connection", "online")


async def send(page: Page, text: str) -> None:
    await page.locator("#input").fill(text)
    await page.locator("#input").press("Enter")


def bot(page: Page) -> Locator:
    """The answers shown whole (not the one still streaming)."""
    return page.locator(".msg.bot:not(.streaming) .bubble")


async def watch_streaming(page: Page) -> None:
    """Record every text a streaming bubble showed (the page's CSP does not apply to this)."""
    await page.evaluate(
        """() => {
        window.__streamed = [];
        new MutationObserver(() => {
          const node = document.querySelector('.msg.streaming .bubble');
          if (node) window.__streamed.push(node.textContent);
        }).observe(document.getElementById('messages'), {subtree: true, childList: true, characterData: true});
      }"""
    )


EARLIER = [  # conversations the screenshot shows in the list
    ("Draft a short note to my landlord about the heating", "Here is a draft:\n\n> Dear Ms. Rossi, …"),
    ("What is 18% of 2,340?", "**421.20**"),
]
SHOTS = bool(os.environ.get("AUTOHANDS_SCREENSHOTS"))  # refresh docs/screenshot-chat.png


async def test_a_message_gets_a_streamed_answer_with_a_code_block(page: Page, tmp_path: Path) -> None:
    script = LLMScript(api_key="sk-local")
    for _, reply in EARLIER if SHOTS else []:
        script.reply(reply)
    script.reply(ANSWER, chunks=8)
    async with web_hub(tmp_path, script) as hub:
        await open_chat(page, hub)
        for question, _ in EARLIER if SHOTS else []:
            await send(page, question)
            await expect(bot(page)).to_have_count(1)
            await page.locator("#new-chat").click()
            await expect(page.locator("#title")).to_have_text("New conversation")
        await watch_streaming(page)
        await send(page, "How do I list the files in a folder by size, in Python?")
        answer = bot(page)
        await expect(answer.locator("pre code")).to_contain_text("sorted(Path('.').iterdir()")
        await expect(answer.locator(".code-lang")).to_have_text("python")
        await expect(answer.locator("strong")).to_have_text("Smallest first")
        await expect(page.locator(".msg.user")).to_have_attribute("data-state", "sent")
        streamed: list[str] = await page.evaluate("window.__streamed")
        assert streamed and len(streamed[0]) < len(ANSWER)  # shown while it streamed, before it was whole
        await expect(page.locator(".conversation.current")).to_have_text(
            "How do I list the files in a folder by size, in Python?"
        )
        if SHOTS:
            await send(page, "/remind in 20 minutes to stretch")
            await expect(bot(page)).to_have_count(2)
            await page.locator("#input").fill("Thanks! Can it skip hidden files?")
            await page.mouse.move(700, 560)  # no hover highlight in the picture
            await page.screenshot(path=str(SCREENSHOT))
    script.assert_done()


async def test_a_tool_is_approved_with_a_click(page: Page, tmp_path: Path) -> None:
    script = LLMScript(api_key="sk-local")
    script.tool_calls(ScriptedCall("run_command", {"command": "ls"}, id="call_1"))
    script.reply("You have one file: notes.txt.")
    async with web_hub(tmp_path, script) as hub:
        await open_chat(page, hub)
        await send(page, "which files do I have?")
        question = page.locator(".msg.question")
        await expect(question).to_contain_text("run_command")
        await question.get_by_role("button", name="Approve", exact=True).click()
        await expect(bot(page).last).to_have_text("You have one file: notes.txt.")
        await expect(page.locator("button.choice")).to_have_count(0)  # the outcome replaced the question
    script.assert_done()
    [result] = [m for m in script.requests[1].body["messages"] if m["role"] == "tool"]
    assert "notes.txt" in result["content"]  # the command ran: the click approved it


async def test_a_reload_mid_answer_loses_nothing_and_doubles_nothing(page: Page, tmp_path: Path) -> None:
    script = LLMScript(api_key="sk-local")
    script.reply("Here it is, after a while.", first_token_delay=1.5)
    async with web_hub(tmp_path, script) as hub:
        await open_chat(page, hub)
        await send(page, "take your time")
        await expect(page.locator(".msg.user")).to_have_attribute("data-state", "sent")
        await expect(page.locator("#typing")).to_be_visible()  # the answer is under way
        await page.reload()
        await expect(bot(page)).to_have_text("Here it is, after a while.")
        await expect(page.locator(".msg.user .bubble")).to_have_text("take your time")
        await page.reload()  # and once more after it arrived: still once each
        await expect(bot(page)).to_have_count(1)
        await expect(page.locator(".msg.user")).to_have_count(1)
    script.assert_done()


async def test_the_hub_going_away_shows_reconnecting_and_nothing_typed_meanwhile_is_lost(
    page: Page, tmp_path: Path
) -> None:
    script = LLMScript(api_key="sk-local")
    script.reply("Back, and I got your message.")
    async with FakeOpenAI(script) as llm:
        async with Hub(hub_settings(tmp_path, llm)) as first:
            running = RunningHub(hub=first, llm=llm, workspace=tmp_path / "workspace")
            port = first.gateway.bound_port if first.gateway else None
            await open_chat(page, running)
        await expect(page.locator("#connection")).to_contain_text("Reconnecting")
        await send(page, "are you there?")  # typed while the hub is down: kept, not lost
        await expect(page.locator(".msg.user")).to_have_attribute("data-state", "pending")
        assert port is not None
        async with Hub(hub_settings(tmp_path, llm, port=port)):
            await expect(page.locator("body")).to_have_attribute("data-connection", "online", timeout=20_000)
            await expect(bot(page)).to_have_text("Back, and I got your message.")
            await expect(page.locator(".msg.user")).to_have_attribute("data-state", "sent")
    script.assert_done()
    assert len(script.requests) == 1


EVIL = (
    "Careful: <img src=x onerror=alert(1)> and [click me](javascript:alert(1)) and "
    "<script>alert(2)</script>, but [the docs](https://example.com/docs) are fine."
)


async def test_an_answer_with_html_and_a_javascript_link_renders_inert(
    page: Page, page_events: PageEvents, tmp_path: Path
) -> None:
    script = LLMScript(api_key="sk-local")
    script.reply(EVIL)
    async with web_hub(tmp_path, script) as hub:
        await open_chat(page, hub)
        await send(page, "show me something odd")
        answer = bot(page)
        await expect(answer).to_contain_text("<img src=x onerror=alert(1)>")  # shown as text
        await expect(answer).to_contain_text("<script>alert(2)</script>")
        assert await answer.locator("img, script, [onerror]").count() == 0
        links = answer.locator("a")
        assert await links.evaluate_all("as => as.map(a => [a.href, a.rel, a.target])") == [
            ["https://example.com/docs", "noopener noreferrer", "_blank"]
        ]
        await answer.get_by_text("click me").click()  # plain text now: nothing happens
        await page.wait_for_timeout(200)
        assert page_events.dialogs == []
        assert await page.evaluate("document.querySelectorAll('[onerror], a[href^=javascript]').length") == 0
        assert page.url == hub.url


async def test_enter_sends_and_shift_enter_starts_a_new_line(page: Page, tmp_path: Path) -> None:
    script = LLMScript("echo", api_key="sk-local")
    async with web_hub(tmp_path, script) as hub:
        await open_chat(page, hub)
        box = page.locator("#input")
        await box.click()
        await page.keyboard.type("first line")
        await page.keyboard.press("Shift+Enter")
        await page.keyboard.type("second line")
        await expect(box).to_have_value("first line\nsecond line")
        assert await page.locator(".msg.user").count() == 0  # Shift+Enter did not send
        await page.keyboard.press("Enter")
        await expect(box).to_have_value("")
        await expect(page.locator(".msg.user .bubble")).to_have_text("first line\nsecond line")
        await expect(bot(page)).to_contain_text("second line")
        assert (await bot(page).inner_text()).endswith("first line\nsecond line")  # the line break, shown
        # A chat command is sent as text like any message, and the hub answers it itself.
        await send(page, "/jobs")
        await expect(bot(page)).to_have_count(2)
        # Too long for one frame: refused on the page (the hub would close the socket), kept in the box.
        await box.fill("x" * 70_000)
        await box.press("Enter")
        await expect(page.locator(".msg.error")).to_contain_text("Too long to send")
        assert len(await box.input_value()) == 70_000
        await expect(page.locator(".msg.user")).to_have_count(2)
    assert len(script.requests) == 1  # /jobs never reached the model
    asked = script.requests[0].body["messages"][-1]["content"]
    assert "first line\nsecond line" in (asked if isinstance(asked, str) else str(asked))


async def test_with_keys_the_page_signs_in_with_the_login_link(page: Page, tmp_path: Path) -> None:
    script = LLMScript("echo", api_key="sk-local")
    async with web_hub(tmp_path, script, api_keys=("sk-web-test",)) as hub:
        response = await page.goto(hub.url)
        assert response is not None and response.status == 401
        await expect(page.locator(".sign-in-box")).to_contain_text("autohands run")
        assert hub.hub.auth is not None
        await page.goto(f"{hub.url}login?token={hub.hub.auth.login_link_token()}")
        await expect(page.locator("body")).to_have_attribute("data-connection", "online")
        assert page.url == hub.url  # the token is gone from the address bar
        await send(page, "hello through the cookie")
        await expect(bot(page)).to_contain_text("hello through the cookie")


VECTORS = [
    "<img src=x onerror=alert(1)>",
    "<svg onload=alert(1)>",
    "<a href='javascript:alert(1)'>a</a>",
    "[a](javascript:alert(1)) [b](JaVaScRiPt:alert(1)) [c]( javascript:alert(1)) [d](java\tscript:alert(1))",
    "[e](data:text/html,<script>alert(1)</script>) [f](vbscript:msgbox) [g](//evil.example) [h](/relative)",
    "<javascript:alert(1)> ![x](javascript:alert(1)) ![pixel](https://evil.example/p.png)",
    '[x](https://ok.example "title" onclick="alert(1)") [**bold**](https://ok.example/b)',
    "```html\n<script>alert(1)</script>\n```\n`<b onmouseover=alert(1)>`",
    "| <img src=x> | [t](javascript:1) |\n|---|---|\n| **a** | b |",
    "> <iframe src=javascript:alert(1)>\n- [l](javascript:void(0))\n1. <style>*{}</style>",
]
ALLOWED_TAGS = "P BR STRONG EM DEL CODE PRE DIV SPAN A UL OL LI BLOCKQUOTE H3 H4 H5 H6 HR TABLE THEAD TBODY TR TH TD"
ALLOWED_ATTRIBUTES = "class href target rel title start"


async def test_the_markdown_renderer_makes_only_known_elements_and_safe_links(page: Page, tmp_path: Path) -> None:
    async with web_hub(tmp_path, LLMScript(api_key="sk-local")) as hub:
        await open_chat(page, hub)
        found = await page.evaluate(
            """async ([vectors, tags, attributes]) => {
            const { renderMarkdown } = await import('./static/markdown.js');
            const bad = [];
            for (const text of [...vectors, vectors.join('\\n\\n'), vectors.join(' ')]) {
              const box = document.createElement('div');
              box.append(renderMarkdown(text));
              for (const node of box.querySelectorAll('*')) {
                if (!tags.split(' ').includes(node.tagName)) bad.push(['tag', node.tagName, text]);
                for (const a of node.attributes) {
                  if (!attributes.split(' ').includes(a.name)) bad.push(['attribute', a.name, text]);
                }
                if (node.tagName === 'A' && !/^(https?:|mailto:)/.test(node.getAttribute('href'))) {
                  bad.push(['href', node.getAttribute('href'), text]);
                }
                if (node.tagName === 'A' && node.rel !== 'noopener noreferrer') bad.push(['rel', node.rel, text]);
              }
            }
            return bad;
          }""",
            [VECTORS, ALLOWED_TAGS, ALLOWED_ATTRIBUTES],
        )
        assert found == []
