"""First contact by pairing, end to end: a real ``Hub`` with python-telegram-bot against the fake
Bot API, and the real command line (``python -m hub.cli pairing | users``) in a subprocess beside
it on the same database. The agent is ``echo``: an ``echo:`` reply means the hub answered.

Also: ``/pair approve`` by an admin and by anyone else, and a Discord stranger's @mention in a
guild (one log line, no reply).
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import sys
from pathlib import Path

import pytest

from channels.discord import DiscordChannel, DiscordConfig
from hub.app import Hub
from hub.channel import ChannelContext
from hub.messages import Inbound
from hub.pairing import PairingService
from hub.store import Store
from hub.store.pairing import MemoryPairing
from tests.channels.support import MemoryState, discord_section, hub_settings, telegram_section
from tests.fakes.discord import FakeDiscord
from tests.fakes.telegram import FakeTelegram

pytestmark = pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")

ALICE = 1001
"""Allowed and admin."""
BOB = 1002
"""Allowed, not an admin."""
STRANGER = 4242
REPO = Path(__file__).resolve().parents[2]
_CODE = re.compile(r"approve code ([A-Z2-9]{8})")


def texts(fake: FakeTelegram, chat_id: int) -> list[str]:
    return [m.text for m in fake.messages(chat_id)]


async def cli(tmp_path: Path, *args: str) -> tuple[int, str]:
    """``autohands <args>`` on the hub's database (``[hub] data_dir``), in its own process."""
    config = tmp_path / "cli.toml"
    config.write_text(f'[hub]\ndata_dir = "{tmp_path}"\n', encoding="utf-8")
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "hub.cli",
        "--config",
        str(config),
        *args,
        cwd=REPO,
        env={**os.environ, "HOME": str(tmp_path)},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(proc.communicate(), 40)
    assert proc.returncode is not None
    return proc.returncode, out.decode()


async def sentinel(fake: FakeTelegram, text: str) -> None:
    """Alice's message, answered: what the stranger sent before it has been handled."""
    fake.inject_message(chat_id=ALICE, text=text)
    await fake.wait_until(lambda: f"echo: {text}" in texts(fake, ALICE), within=10)


async def test_stranger_paired_by_the_cli_beside_the_running_hub(telegram: FakeTelegram, tmp_path: Path) -> None:
    fake = telegram
    async with Hub(hub_settings(tmp_path, telegram=telegram_section(fake, allow=[ALICE]))) as hub:
        assert isinstance(hub.store, Store)
        fake.inject_message(chat_id=STRANGER, text="hello?", username="mallory")
        await fake.wait_until(lambda: bool(texts(fake, STRANGER)), within=10)
        [answer] = texts(fake, STRANGER)
        match = _CODE.search(answer)
        assert match is not None, answer
        code = match.group(1)
        assert f"(autohands pairing approve {code})" in answer and "4242" in answer
        fake.inject_message(chat_id=STRANGER, text="hello??", username="mallory")
        await sentinel(fake, "one")
        assert texts(fake, STRANGER) == [answer]  # one answer per interval, and no model call
        assert sum((await hub.store.count_messages()).values()) == 1  # only Alice's: nothing of the stranger's

        status, out = await cli(tmp_path, "pairing", "list")
        assert status == 0 and code in out and "@mallory (id 4242)" in out, out
        status, out = await cli(tmp_path, "pairing", "approve", code.lower())
        assert status == 0 and "approved @mallory (id 4242) on telegram" in out, out

        fake.inject_message(chat_id=STRANGER, text="may I now?", username="mallory")
        await fake.wait_until(lambda: "echo: may I now?" in texts(fake, STRANGER), within=10)

        status, out = await cli(tmp_path, "users", "list", "--channel", "telegram")
        assert status == 0 and "telegram  4242  @mallory  approved by cli" in out, out
        status, out = await cli(tmp_path, "users", "revoke", "telegram", "4242")
        assert status == 0, out

        fake.inject_message(chat_id=STRANGER, text="still here?", username="mallory")
        await sentinel(fake, "two")
        assert "echo: still here?" not in texts(fake, STRANGER)
    status, out = await cli(tmp_path, "pairing", "approve", code)
    assert status == 1 and "no pending pairing code" in out  # used


async def test_pair_approve_in_chat_by_an_admin_not_by_others(telegram: FakeTelegram, tmp_path: Path) -> None:
    fake = telegram
    section = telegram_section(fake, allow=[ALICE, BOB], admins=[str(ALICE)])
    async with Hub(hub_settings(tmp_path, telegram=section)):
        fake.inject_message(chat_id=STRANGER, text="hi", username="mallory")
        await fake.wait_until(lambda: bool(texts(fake, STRANGER)), within=10)
        match = _CODE.search(texts(fake, STRANGER)[0])
        assert match is not None
        code = match.group(1)

        fake.inject_message(chat_id=BOB, text=f"/pair approve {code}", username="bob")
        await fake.wait_until(lambda: bool(texts(fake, BOB)), within=10)
        assert texts(fake, BOB) == ["Sorry: only an admin of this bot can use /pair."]

        fake.inject_message(chat_id=ALICE, text=f"/pair approve {code}")
        await fake.wait_until(lambda: bool(texts(fake, ALICE)), within=10)
        assert texts(fake, ALICE) == ["Approved @mallory (id 4242): their next message will be answered."]

        fake.inject_message(chat_id=STRANGER, text="thanks", username="mallory")
        await fake.wait_until(lambda: "echo: thanks" in texts(fake, STRANGER), within=10)


async def test_discord_stranger_mention_in_a_guild_is_logged_not_answered(
    discord_fake: FakeDiscord, caplog: pytest.LogCaptureFixture
) -> None:
    fake = discord_fake
    caplog.set_level(logging.INFO, logger="channels.access")
    pairing = PairingService(MemoryPairing())
    config = DiscordConfig.model_validate(discord_section(fake))
    channel = DiscordChannel("discord", config, ChannelContext(state=MemoryState(), pairing=pairing))
    seen: list[Inbound] = []

    async def inbox(inbound: Inbound) -> bool:
        seen.append(inbound)
        return True

    await channel.start(inbox)
    try:
        for _ in range(3):  # a flood is one line
            await fake.user_message(fake.general_id, fake.carol, "let me in", mention=True)
        await fake.user_message(fake.general_id, fake.alice, "sentinel", mention=True)
        async with asyncio.timeout(10):
            while not seen:  # noqa: ASYNC110 - the fake's gateway has no event to wait on
                await asyncio.sleep(0.02)
    finally:
        await channel.stop()
    assert [i.text for i in seen] == ["sentinel"]
    assert fake.created == []  # no reply in a guild
    lines = [r.getMessage() for r in caplog.records if r.name == "channels.access"]
    carol = fake.carol["id"]
    assert lines == [
        f'discord: ignored @carol (id {carol}) in chat {fake.general_id}: not in allow_users; add "{carol}" to '
        "[channels.discord] allow_users (or the chat to allow_chats), or approve a pairing (they write to the "
        "bot in a direct chat)"
    ]
    assert await pairing.pending() == []  # no code in a guild
