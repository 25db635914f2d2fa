"""``/task`` in a Telegram chat (python-telegram-bot against the fake Bot API, the LLM agent on
the fake OpenAI model): the id comes back at once, the result is posted in the same chat, and
``/tasks`` lists it there. Another user's refusal is in tests/hub/test_task_commands.py."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from hub.app import Hub
from tests.channels.test_slice_e2e import ALICE, settings
from tests.fakes.llm_script import LLMScript
from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.telegram import FakeTelegram

pytestmark = pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")

QUEUED = re.compile(r"^Task (\w+) is queued")


async def test_task_in_a_telegram_chat_posts_its_result_back_there(telegram: FakeTelegram, tmp_path: Path) -> None:
    script = LLMScript(api_key="sk-local")
    script.reply("Paris is the capital of France.")
    async with FakeOpenAI(script) as llm, Hub(settings(tmp_path, telegram, llm)) as hub:
        telegram.inject_message(chat_id=ALICE, text="/task what is the capital of France?")
        await telegram.wait_until(lambda: any(QUEUED.match(m.text) for m in telegram.messages(ALICE)), within=20)
        [queued] = [m for m in telegram.messages(ALICE) if QUEUED.match(m.text)]
        found = QUEUED.match(queued.text)
        assert found is not None
        task_id = found.group(1)
        await telegram.wait_until(
            lambda: any(m.text.endswith("Paris is the capital of France.") for m in telegram.messages(ALICE)),
            within=20,
        )
        task = await hub.tasks.get(task_id)
        assert task.state == "completed" and task.owner.id == str(ALICE)
        assert task.conversation.channel == "telegram" and task.conversation.chat == str(ALICE)
        telegram.inject_message(chat_id=ALICE, text="/tasks")
        await telegram.wait_until(
            lambda: any(m.text.startswith("Your tasks") and task_id in m.text for m in telegram.messages(ALICE)),
            within=20,
        )
    script.assert_done()
