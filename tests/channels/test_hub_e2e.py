"""End to end: a real ``Hub`` built from config as ``autohands run`` builds it, each platform's
real SDK, and the platform's local fake. The agent is ``[agent] runtime = "echo"`` (answers
``echo: <text>`` at once), so every assertion is about the channels and the hub, not a model.

The last test runs the real command line (``python -m hub.cli run``) in a subprocess against
the fake Telegram: "autohands run with [channels.telegram] set answers as a Telegram bot".
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from channels.slack import EVENTS_PATH
from hub.app import Hub
from hub.backoff import Backoff
from tests.channels import support
from tests.channels.support import discord_section, hub_settings, slack_section
from tests.fakes.discord import FakeDiscord
from tests.fakes.slack import FakeSlack
from tests.fakes.telegram import FakeTelegram

# PTB's own RetryAfter constructor reads its deprecated int-valued ``retry_after`` (PTB 22.2+).
pytestmark = pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")

ALICE = 1001
REPO = Path(__file__).resolve().parents[2]


# ---------------------------------------------------------------------- config, as `autohands run`
def telegram_section(fake: FakeTelegram) -> dict[str, Any]:
    return support.telegram_section(fake, allow=[ALICE])


def events_url(hub: Hub) -> str:
    assert hub.gateway is not None and hub.gateway.bound_port
    return f"http://127.0.0.1:{hub.gateway.bound_port}{EVENTS_PATH}"


async def until(predicate: Callable[[], object], within: float = 10.0) -> None:
    """For records without an event to wait on (Discord's fake); bounded by ``within``."""

    async def poll() -> None:
        while not predicate():  # noqa: ASYNC110
            await asyncio.sleep(0.02)

    await asyncio.wait_for(poll(), within)


def tg_texts(fake: FakeTelegram, chat_id: int = ALICE) -> list[str]:
    return [m.text for m in fake.messages(chat_id)]


# ---------------------------------------------------------------------- one platform each
async def test_telegram_direct_message_answered(telegram: FakeTelegram, tmp_path: Path) -> None:
    async with Hub(hub_settings(tmp_path, telegram=telegram_section(telegram))) as hub:
        assert set(hub.channels) == {"telegram"}
        telegram.inject_message(chat_id=ALICE, text="hello bot")
        await telegram.wait_until(lambda: "echo: hello bot" in tg_texts(telegram), within=10)
    assert tg_texts(telegram) == ["echo: hello bot"]
    assert "start" in {c["command"] for c in telegram.commands}


# Regression (fixed in d1a10e2): the hub once built its channels before the session commands
# (/new /stop /status /help) were registered, so channels never learned them.
async def test_telegram_command_menu_lists_session_commands(telegram: FakeTelegram, tmp_path: Path) -> None:
    async with Hub(hub_settings(tmp_path, telegram=telegram_section(telegram))):
        pass
    assert {"start", "new", "stop", "status", "help"} <= {c["command"] for c in telegram.commands}


async def test_slack_subcommand_reaches_the_hub_command(slack: FakeSlack, tmp_path: Path) -> None:
    async with Hub(hub_settings(tmp_path, slack=slack_section(slack))) as hub:
        ack = await slack.send_slash_command(events_url(hub), "help", channel="C42")
        assert ack.status == 200
        await slack.wait_until(lambda: slack.posts, within=10)
    # `/ask help` must run the hub's /help, not be asked to the agent as the word "help".
    assert slack.posts[0].text != "echo: help"
    assert "/status" in slack.posts[0].text


async def test_telegram_stranger_refused_not_answered(telegram: FakeTelegram, tmp_path: Path) -> None:
    async with Hub(hub_settings(tmp_path, telegram=telegram_section(telegram))):
        telegram.inject_message(chat_id=4242, text="let me in", username="mallory")
        await telegram.wait_until(lambda: bool(telegram.messages(4242)), within=10)
        telegram.inject_message(chat_id=ALICE, text="sentinel")
        await telegram.wait_until(lambda: "echo: sentinel" in tg_texts(telegram), within=10)
    [refusal] = tg_texts(telegram, 4242)
    assert "4242" in refusal and not refusal.startswith("echo:")


async def test_slack_mention_answered_in_thread_and_slash_command(slack: FakeSlack, tmp_path: Path) -> None:
    async with Hub(hub_settings(tmp_path, slack=slack_section(slack))) as hub:
        url = events_url(hub)
        event = slack.mention_event("summarise this", channel="C9", user="U3")
        resp = await slack.send_event(url, event)
        assert resp.status == 200
        await slack.wait_until(lambda: any(p.text == "echo: summarise this" for p in slack.posts), within=10)

        ack = await slack.send_slash_command(url, "what is 2+2?", channel="C42", user="U7")
        assert ack.status == 200 and ack.elapsed < 3.0
        assert ack.json() == {"text": "Working on it…", "response_type": "ephemeral"}
        await slack.wait_until(lambda: any(p.text == "echo: what is 2+2?" for p in slack.posts), within=10)
    mention_reply = next(p for p in slack.posts if p.text == "echo: summarise this")
    assert (mention_reply.channel, mention_reply.thread_ts) == ("C9", event["ts"])
    command_reply = next(p for p in slack.posts if p.text == "echo: what is 2+2?")
    assert (command_reply.channel, command_reply.thread_ts) == ("C42", None)
    assert len(slack.posts) == 2


async def test_slack_retried_event_answered_once(slack: FakeSlack, tmp_path: Path) -> None:
    async with Hub(hub_settings(tmp_path, slack=slack_section(slack))) as hub:
        url = events_url(hub)
        envelope = slack.event_envelope(slack.mention_event("once please", channel="C1"), event_id="Ev1")
        assert (await slack.send_envelope(url, envelope)).status == 200
        assert (await slack.send_envelope(url, envelope, retry_num=1)).status == 200
        await slack.send_event(url, slack.mention_event("sentinel", channel="C1"))
        await slack.wait_until(lambda: any(p.text == "echo: sentinel" for p in slack.posts), within=10)
    assert [p.text for p in slack.posts].count("echo: once please") == 1


async def test_discord_mention_answered(discord_fake: FakeDiscord, tmp_path: Path) -> None:
    fake = discord_fake
    async with Hub(hub_settings(tmp_path, discord=discord_section(fake))):
        msg = await fake.user_message(fake.general_id, fake.alice, "hello there", mention=True)
        await until(lambda: any(c.message["content"] == "echo: hello there" for c in fake.created))
        await fake.user_message(fake.general_id, fake.alice, "not for the bot")
        await fake.dm(fake.alice, "sentinel")
        await until(lambda: any(c.message["content"] == "echo: sentinel" for c in fake.created))
    [answer, dm_answer] = fake.created
    assert answer.message["channel_id"] == fake.general_id
    assert answer.message["message_reference"]["message_id"] == msg["id"]
    assert answer.payload["enforce_nonce"] is True
    assert dm_answer.message["channel_id"] == fake.dm_channel(fake.alice)


# ---------------------------------------------------------------------- durability
async def test_telegram_backlog_after_restart_answered_exactly_once(telegram: FakeTelegram, tmp_path: Path) -> None:
    settings = hub_settings(tmp_path, telegram=telegram_section(telegram))
    async with Hub(settings):
        telegram.inject_message(chat_id=ALICE, text="before")
        await telegram.wait_until(lambda: "echo: before" in tg_texts(telegram), within=10)
    # The hub is down: Telegram keeps what users send meanwhile.
    for i in range(3):
        telegram.inject_message(chat_id=ALICE, text=f"while down {i}")
    assert telegram.dropped_pending == 0
    async with Hub(settings):
        await telegram.wait_until(lambda: "echo: while down 2" in tg_texts(telegram), within=10)
        telegram.inject_message(chat_id=ALICE, text="sentinel")
        await telegram.wait_until(lambda: "echo: sentinel" in tg_texts(telegram), within=10)
    assert tg_texts(telegram) == [
        "echo: before",
        "echo: while down 0",
        "echo: while down 1",
        "echo: while down 2",
        "echo: sentinel",
    ]


async def test_telegram_update_delivered_twice_answered_once(telegram: FakeTelegram, tmp_path: Path) -> None:
    settings = hub_settings(tmp_path, telegram=telegram_section(telegram))
    update = telegram.inject_message(chat_id=ALICE, text="dup")
    telegram.redeliver(update)  # the same update twice in one batch
    async with Hub(settings):
        await telegram.wait_until(lambda: "echo: dup" in tg_texts(telegram), within=10)
    # Telegram delivers at least once: after a restart the adapter's in-memory set of seen ids
    # is empty, so only the store's (channel, platform_id) key can recognise this one.
    telegram.redeliver(update)
    async with Hub(settings):
        telegram.inject_message(chat_id=ALICE, text="sentinel")
        await telegram.wait_until(lambda: "echo: sentinel" in tg_texts(telegram), within=10)
    assert tg_texts(telegram) == ["echo: dup", "echo: sentinel"]
    assert update not in telegram.pending  # it was confirmed, not left to come back again


# ---------------------------------------------------------------------- all three at once
async def test_three_channels_in_one_hub(
    telegram: FakeTelegram, slack: FakeSlack, discord_fake: FakeDiscord, tmp_path: Path
) -> None:
    settings = hub_settings(
        tmp_path,
        telegram=telegram_section(telegram),
        slack=slack_section(slack),
        discord=discord_section(discord_fake),
    )
    async with Hub(settings) as hub:
        assert hub.health() == {"ok": True, "channels": {"discord": True, "slack": True, "telegram": True}}
        telegram.inject_message(chat_id=ALICE, text="from telegram")
        slack_sent = asyncio.create_task(slack.send_event(events_url(hub), slack.message_event("from slack")))
        await discord_fake.user_message(discord_fake.general_id, discord_fake.alice, "from discord", mention=True)
        assert (await slack_sent).status == 200
        await telegram.wait_until(lambda: "echo: from telegram" in tg_texts(telegram), within=10)
        await slack.wait_until(lambda: any(p.text == "echo: from slack" for p in slack.posts), within=10)
        await until(lambda: any(c.message["content"] == "echo: from discord" for c in discord_fake.created))
    # Each answer went to its own platform only.
    assert tg_texts(telegram) == ["echo: from telegram"]
    assert [p.text for p in slack.posts] == ["echo: from slack"]
    assert [c.message["content"] for c in discord_fake.created] == ["echo: from discord"]


# ---------------------------------------------------------------------- platform unreachable at start
async def test_telegram_unreachable_at_start_is_retried_then_answers(telegram: FakeTelegram, tmp_path: Path) -> None:
    telegram.fail("getMe", times=2, kind="server_error")  # e.g. booted before the network was up
    retry = Backoff(first=0.05, cap=0.1)
    async with Hub(hub_settings(tmp_path, telegram=telegram_section(telegram)), start_retry=retry) as hub:
        health = hub.health()
        assert health["ok"] is False and "getMe" in health["errors"]["telegram"]  # type: ignore[index]
        telegram.inject_message(chat_id=ALICE, text="are you there?")
        await telegram.wait_until(lambda: "echo: are you there?" in tg_texts(telegram), within=10)
        assert hub.health() == {"ok": True, "channels": {"telegram": True}}
    assert len(telegram.method_calls("getMe")) == 3
    assert tg_texts(telegram) == ["echo: are you there?"]


async def test_slack_unreachable_at_start_refuses_events_until_started(slack: FakeSlack, tmp_path: Path) -> None:
    slack.fail_next("auth.test", "service_unavailable", status=503)
    slack.fail_next("auth.test", "service_unavailable", status=503)
    retry = Backoff(first=0.2, cap=0.2)
    async with Hub(hub_settings(tmp_path, slack=slack_section(slack)), start_retry=retry) as hub:
        assert hub.health()["ok"] is False
        # Not started: not acknowledged either, so Slack delivers it again later.
        early = await slack.send_event(events_url(hub), slack.message_event("too early"))
        assert early.status == 503
        await until(lambda: hub.health()["ok"])
        assert len(slack.calls_of("auth.test")) == 3
        resp = await slack.send_event(events_url(hub), slack.message_event("now"))
        assert resp.status == 200
        await slack.wait_until(lambda: any(p.text == "echo: now" for p in slack.posts), within=10)
    assert [p.text for p in slack.posts] == ["echo: now"]


async def test_discord_unreachable_at_start_is_retried_then_answers(discord_fake: FakeDiscord, tmp_path: Path) -> None:
    discord_fake.fail_next("GET", "/users/@me", 503)  # login fails once
    retry = Backoff(first=0.05, cap=0.1)
    async with Hub(hub_settings(tmp_path, discord=discord_section(discord_fake)), start_retry=retry) as hub:
        assert "discord login: 503" in hub.health()["errors"]["discord"]  # type: ignore[index]
        await until(lambda: hub.health()["ok"])
        await discord_fake.user_message(discord_fake.general_id, discord_fake.alice, "back?", mention=True)
        await until(lambda: any(c.message["content"] == "echo: back?" for c in discord_fake.created))
    assert [c.message["content"] for c in discord_fake.created] == ["echo: back?"]


# ---------------------------------------------------------------------- a channel that dies for good
async def test_telegram_token_revoked_while_running_shows_in_healthz(telegram: FakeTelegram, tmp_path: Path) -> None:
    async with Hub(hub_settings(tmp_path, telegram=telegram_section(telegram))) as hub:
        assert hub.health()["ok"] is True
        telegram.fail("getUpdates", kind="forbidden")  # e.g. the token was revoked in BotFather
        telegram.inject_message(chat_id=ALICE, text="wake the long poll")
        await until(lambda: not hub.health()["ok"])
        assert "token was rejected; polling stopped" in hub.health()["errors"]["telegram"]  # type: ignore[index]


async def test_discord_refused_by_the_gateway_while_running_shows_in_healthz(
    discord_fake: FakeDiscord, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with Hub(hub_settings(tmp_path, discord=discord_section(discord_fake))) as hub:
        assert hub.health()["ok"] is True
        await discord_fake.close_connection(code=4004)  # Authentication failed: no reconnecting
        await until(lambda: not hub.health()["ok"])
        assert "gateway connection ended" in hub.health()["errors"]["discord"]  # type: ignore[index]
    assert [r.levelname for r in caplog.records if "gateway connection ended" in r.getMessage()] == ["ERROR"]


# ---------------------------------------------------------------------- the real command line
def write_cli_config(tmp_path: Path, telegram: FakeTelegram) -> Path:
    config = tmp_path / "config.toml"
    config.write_text(
        f"""
[hub]
data_dir = "{tmp_path / "data"}"

[server]
port = 0

[agent]
runtime = "echo"

[channels.telegram]
enabled = true
token = "${{TELEGRAM_BOT_TOKEN}}"
base_url = "{telegram.base_url}"
base_file_url = "{telegram.base_file_url}"
poll_timeout = 2
allow_users = [{ALICE}]
""",
        encoding="utf-8",
    )
    return config


async def start_cli(tmp_path: Path, telegram: FakeTelegram) -> asyncio.subprocess.Process:
    config = write_cli_config(tmp_path, telegram)
    env = {**os.environ, "TELEGRAM_BOT_TOKEN": telegram.token, "HOME": str(tmp_path)}
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "hub.cli",
        "run",
        "--config",
        str(config),
        cwd=REPO,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


async def read_until(stream: asyncio.StreamReader | None, marker: bytes, seen: list[bytes]) -> None:
    assert stream is not None
    while line := await stream.readline():
        seen.append(line)
        if marker in line:
            return
    raise EOFError(f"the process ended before logging {marker!r}")


async def test_autohands_run_answers_as_a_telegram_bot(telegram: FakeTelegram, tmp_path: Path) -> None:
    proc = await start_cli(tmp_path, telegram)
    early: list[bytes] = []
    answered = False
    try:
        # Generous: a cold interpreter importing every SDK on a loaded 2-core runner is slow.
        # Waiting for "running" keeps this test about answering (start-up signals: test below).
        await asyncio.wait_for(read_until(proc.stderr, b"AutoHands is running", early), 35)
        telegram.inject_message(chat_id=ALICE, text="are you a bot?")
        with contextlib.suppress(TimeoutError):
            await telegram.wait_until(lambda: "echo: are you a bot?" in tg_texts(telegram), within=10)
            answered = True
        proc.send_signal(signal.SIGTERM)
        _, stderr = await asyncio.wait_for(proc.communicate(), 15)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    log = b"".join(early).decode(errors="replace") + stderr.decode(errors="replace")
    assert answered, f"the bot did not answer; its log:\n{log}"
    assert proc.returncode == 0, log
    assert "Traceback" not in log
    assert telegram.token.partition(":")[2] not in log  # the token never reaches the log


async def test_autohands_run_sigterm_during_startup_stops_cleanly(telegram: FakeTelegram, tmp_path: Path) -> None:
    proc = await start_cli(tmp_path, telegram)
    try:
        # getMe is the Telegram channel's first call in start(): the hub is mid-start-up.
        await telegram.wait_until(lambda: bool(telegram.method_calls("getMe")), within=35)
        proc.send_signal(signal.SIGTERM)
        _, stderr = await asyncio.wait_for(proc.communicate(), 15)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode == 0, stderr.decode(errors="replace")
