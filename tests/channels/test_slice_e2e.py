"""The first slice end to end: a Telegram user asks, the LLM agent (real openai SDK against the
fake OpenAI server) wants a high-risk tool, the user approves or denies it with the inline
buttons in the same chat, and the answer comes back; a reminder the agent sets arrives later in
the same chat. Hub built from config as ``autohands run``
builds it; python-telegram-bot against the fake Bot API."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from hub.app import Hub
from hub.config import Settings, load_settings
from tests.channels.support import TELEGRAM_TIMINGS
from tests.fakes.llm_script import LLMScript, ScriptedCall
from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.telegram import FakeTelegram, SentMessage

pytestmark = pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")

ALICE = 1001


def settings(tmp_path: Path, telegram: FakeTelegram, llm: FakeOpenAI) -> Settings:
    workspace = tmp_path / "workspace"
    workspace.mkdir()
    (workspace / "notes.txt").write_text("buy milk\n")
    return load_settings(
        environ={},
        overrides={
            "hub": {"data_dir": str(tmp_path / "data")},
            "server": {"enabled": False},
            "providers": {
                "local": {"kind": "openai", "base_url": llm.base_url, "api_key": "sk-local", "model": "local-model"}
            },
            "agent": {"provider": "local"},
            "tools": {"workspace": str(workspace), "workspace_scope": "shared", "shell": {"allow_commands": ["ls"]}},
            "channels": {
                "telegram": {
                    "enabled": True,
                    "token": telegram.token,
                    "base_url": telegram.base_url,
                    "base_file_url": telegram.base_file_url,
                    "poll_timeout": 5,
                    "allow_users": [str(ALICE)],
                    **TELEGRAM_TIMINGS,
                }
            },
        },
    )


def ls_then(answer: str) -> LLMScript:
    """The model lists the workspace with the (high-risk) shell tool, then answers."""
    script = LLMScript(api_key="sk-local")
    script.tool_calls(ScriptedCall("run_command", {"command": "ls"}, id="call_1"))
    script.reply(answer)
    return script


async def until_said(telegram: FakeTelegram, text: str) -> None:
    await telegram.wait_until(lambda: any(m.text == text for m in telegram.messages(ALICE)), within=20)


def question(telegram: FakeTelegram) -> SentMessage | None:
    return next((m for m in telegram.messages(ALICE) if m.buttons), None)


async def tap(telegram: FakeTelegram, label: str) -> SentMessage:
    await telegram.wait_until(lambda: question(telegram) is not None, within=20)
    asked = question(telegram)
    assert asked is not None and "run_command" in asked.text and '"ls"' in asked.text
    data = dict(asked.buttons)[label]
    telegram.inject_callback(chat_id=ALICE, message_id=asked.message_id, data=data)
    return asked


@pytest.mark.parametrize(
    ("button", "answer", "outcome", "ran"),
    [
        ("Approve", "You have one file: notes.txt.", "Approved: approved by the user.", True),
        ("Deny", "OK, I will not look at your files.", "Not run: the user denied the call.", False),
    ],
)
async def test_high_risk_tool_waits_for_the_users_button_on_telegram(
    telegram: FakeTelegram, tmp_path: Path, button: str, answer: str, outcome: str, ran: bool
) -> None:
    script = ls_then(answer)
    async with FakeOpenAI(script) as llm, Hub(settings(tmp_path, telegram, llm)):
        telegram.inject_message(chat_id=ALICE, text="which files do I have?")
        asked = await tap(telegram, button)
        await until_said(telegram, answer)
        # The question was replaced by its outcome, so its buttons cannot be tapped twice.
        assert asked.text.endswith("\n" + outcome) and asked.buttons == []
    script.assert_done()
    [result] = [m for m in script.requests[1].body["messages"] if m["role"] == "tool"]
    content: Any = result["content"]
    assert ("notes.txt" in content) is ran  # denied: the command never ran, and the model is told
    assert ran or "denied" in content.lower()
    assert [m.text for m in telegram.messages(ALICE) if m is not asked].count(answer) == 1


async def test_approval_answered_with_a_text_yes(telegram: FakeTelegram, tmp_path: Path) -> None:
    # Some Telegram clients (and people) answer in words rather than with the button.
    script = ls_then("notes.txt is there.")
    async with FakeOpenAI(script) as llm, Hub(settings(tmp_path, telegram, llm)):
        telegram.inject_message(chat_id=ALICE, text="list my files")
        await telegram.wait_until(lambda: question(telegram) is not None, within=20)
        telegram.inject_message(chat_id=ALICE, text="yes")
        await until_said(telegram, "notes.txt is there.")
    script.assert_done()
    assert len(script.requests) == 2  # the "yes" answered the question; it was not a new prompt


async def test_the_agent_sets_a_reminder_that_arrives_in_the_same_chat(telegram: FakeTelegram, tmp_path: Path) -> None:
    script = LLMScript(api_key="sk-local")
    script.tool_calls(
        ScriptedCall(
            "schedule", {"operation": "create", "text": "Stretch your legs!", "when": "in 1 second"}, id="call_1"
        )
    )
    script.reply("Done: I will remind you in 1 second.")
    async with FakeOpenAI(script) as llm, Hub(settings(tmp_path, telegram, llm)):
        telegram.inject_message(chat_id=ALICE, text="remind me to stretch in 1 second")
        await until_said(telegram, "Stretch your legs!")
    script.assert_done()  # the reminder is sent as is: no model call when it fires
    texts = [m.text.strip() for m in telegram.messages(ALICE)]
    # the tool call's line (one message, edited as calls finish), the answer, the reminder
    assert texts == ["🔧 schedule create ✓", "Done: I will remind you in 1 second.", "Stretch your legs!"]
