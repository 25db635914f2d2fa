"""The hub's "nothing lost, nothing doubled", end to end through each platform's real SDK.

Each test builds the ``Hub`` from config as ``autohands run`` builds it (store, sessions,
outbox, channels) and talks to the platform's local fake (``tests/fakes``): what the hub
promises about backlogs, id jumps, gaps in the Discord gateway, long replies and Telegram's
HTML is checked where the user would see it, on the fake platform. The agent is either
``[agent] runtime = "echo"`` (answers ``echo: <text>``) or a one-line agent that answers with
a fixed text, so every assertion is about the channels and the hub, not a model.
"""

from __future__ import annotations

import asyncio
import html
import itertools
import logging
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import regex

from channels.formatting import render, to_plain
from channels.slack import EVENTS_PATH, MAX_LENGTH as SLACK_MAX
from hub.agent import RunContext
from hub.app import Hub
from hub.messages import Button, Outbound
from tests.channels import support
from tests.channels.support import discord_section, hub_settings, slack_section
from tests.fakes.discord import FakeDiscord
from tests.fakes.slack import FakeSlack
from tests.fakes.telegram import FakeTelegram, parse_html

# PTB's own RetryAfter constructor reads its deprecated int-valued ``retry_after`` (PTB 22.2+).
pytestmark = pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")

ALICE = 1001
BOB = 1002


# ---------------------------------------------------------------------- config, as `autohands run`
def telegram_section(fake: FakeTelegram, **extra: Any) -> dict[str, Any]:
    return support.telegram_section(fake, allow=[ALICE, BOB], poll_timeout=1, **extra)


class FixedReply:
    """An agent that answers every message with ``text`` (Markdown)."""

    def __init__(self, text: str) -> None:
        self.text = text

    async def run(self, ctx: RunContext) -> AsyncIterator[Outbound]:
        yield Outbound(
            conversation=ctx.conversation,
            text=self.text,
            reply_to_platform_id=ctx.inbound.reply_to_platform_id,
            inbound_id=ctx.inbound.id,
        )


async def until(predicate: Callable[[], object], within: float = 10.0) -> None:
    """For hub counters and the Discord fake, which have no event to wait on (bounded)."""

    async def poll() -> None:
        while not predicate():  # noqa: ASYNC110
            await asyncio.sleep(0.02)

    await asyncio.wait_for(poll(), within)


async def until_async(predicate: Callable[[], Awaitable[object]], within: float = 10.0) -> None:
    """``until`` for a condition read from the hub's store."""

    async def poll() -> None:
        while not await predicate():  # noqa: ASYNC110
            await asyncio.sleep(0.02)

    await asyncio.wait_for(poll(), within)


def tg_texts(fake: FakeTelegram, chat_id: int = ALICE) -> list[str]:
    return [m.text for m in fake.messages(chat_id)]


def discord_texts(fake: FakeDiscord) -> list[str]:
    return [c.message["content"] for c in fake.created]


# ====================================================================== 1. Telegram ingress
async def test_telegram_six_updates_queued_while_down_are_answered_once_in_order(
    telegram: FakeTelegram, tmp_path: Path
) -> None:
    settings = hub_settings(tmp_path, telegram=telegram_section(telegram))
    async with Hub(settings):
        telegram.inject_message(chat_id=ALICE, text="first life")
        await telegram.wait_until(lambda: "echo: first life" in tg_texts(telegram), within=10)
    # The hub is down; Telegram keeps what both users send meanwhile (for 24 hours).
    queued = [f"queued {i}" for i in range(6)]
    for i, text in enumerate(queued):
        telegram.inject_message(chat_id=ALICE, text=text)
        if i % 2:
            telegram.inject_message(chat_id=BOB, text=f"bob {i}", username="bob", first_name="Bob")
    async with Hub(settings):
        await telegram.wait_until(lambda: len(tg_texts(telegram)) == 7 and len(tg_texts(telegram, BOB)) == 3, within=15)
    # A third start: everything was confirmed, nothing comes back to be answered again.
    async with Hub(settings):
        telegram.inject_message(chat_id=ALICE, text="sentinel")
        await telegram.wait_until(lambda: "echo: sentinel" in tg_texts(telegram), within=10)
    assert tg_texts(telegram) == ["echo: first life", *(f"echo: {t}" for t in queued), "echo: sentinel"]
    assert tg_texts(telegram, BOB) == ["echo: bob 1", "echo: bob 3", "echo: bob 5"]
    assert telegram.dropped_pending == 0 and not telegram.pending


async def _answer_six_then_idle(telegram: FakeTelegram) -> int:
    """Six updates answered, then one long poll comes back empty: the bot is idle. Returns the
    first of the six update ids."""
    first = telegram.inject_message(chat_id=ALICE, text="before 0")["update_id"]
    for i in range(1, 6):
        telegram.inject_message(chat_id=ALICE, text=f"before {i}")
    await telegram.wait_until(lambda: len(tg_texts(telegram)) == 6, within=15)
    idle = telegram.empty_answers
    await telegram.wait_until(lambda: telegram.empty_answers > idle, within=10)
    return first


# Before the fix the poll loop kept the offset of its last batch forever; Telegram then treats
# every lower new id as confirmed (TQueue::get forgets ids below the offset), so these were lost.
async def test_telegram_update_id_that_jumps_lower_after_an_idle_gap_is_answered_once(
    telegram: FakeTelegram, tmp_path: Path
) -> None:
    async with Hub(hub_settings(tmp_path, telegram=telegram_section(telegram))):
        first = await _answer_six_then_idle(telegram)
        # A week without updates: Telegram picks a new starting id, here just below the old ones.
        telegram.restart_numbering(at=first - 5)
        after = [telegram.inject_message(chat_id=ALICE, text=f"after the gap {i}") for i in range(3)]
        assert max(u["update_id"] for u in after) < first
        await telegram.wait_until(lambda: len(tg_texts(telegram)) == 9, within=10)
        telegram.redeliver(after[1])  # Telegram delivers at least once
        telegram.inject_message(chat_id=ALICE, text="sentinel")
        await telegram.wait_until(lambda: "echo: sentinel" in tg_texts(telegram), within=10)
    assert tg_texts(telegram) == [
        *(f"echo: before {i}" for i in range(6)),
        *(f"echo: after the gap {i}" for i in range(3)),
        "echo: sentinel",
    ]


async def test_telegram_ids_reused_after_a_numbering_restart_are_answered(
    telegram: FakeTelegram, tmp_path: Path
) -> None:
    async with Hub(hub_settings(tmp_path, telegram=telegram_section(telegram))):
        first = await _answer_six_then_idle(telegram)
        telegram.restart_numbering(at=first - 2)  # the new ids climb into the ones used before
        for i in range(4):
            telegram.inject_message(chat_id=ALICE, text=f"after the gap {i}")
        await telegram.wait_until(lambda: len(tg_texts(telegram)) == 10, within=6)
    assert tg_texts(telegram)[6:] == [f"echo: after the gap {i}" for i in range(4)]


# ====================================================================== 2. Discord gateway gaps
def last_seen_key(fake: FakeDiscord) -> str:
    return f"channel:discord:last_seen:{fake.general_id}"


async def _first_life(fake: FakeDiscord, hub: Hub) -> None:
    msg = await fake.user_message(fake.general_id, fake.alice, "first life", mention=True)
    await until(lambda: "echo: first life" in discord_texts(fake))
    await until_async(lambda: _state_is(hub, last_seen_key(fake), msg["id"]))


async def _state_is(hub: Hub, key: str, value: str) -> bool:
    return await hub.store.state_get(key) == value


async def test_discord_messages_missed_while_down_are_backfilled_and_answered_once(
    discord_fake: FakeDiscord, tmp_path: Path
) -> None:
    fake = discord_fake
    settings = hub_settings(tmp_path, discord=discord_section(fake))
    async with Hub(settings) as hub:
        await _first_life(fake, hub)
    for i in range(3):  # the hub is down: these reach channel history only
        await fake.user_message(fake.general_id, fake.alice, f"while down {i}", mention=True)
    await fake.user_message(fake.general_id, fake.bob, "chatter not for the bot")
    async with Hub(settings):
        await until(lambda: len(fake.created) == 4)
        # Still running: the session cannot RESUME, so the gateway IDENTIFYs again (a new READY).
        async with fake.outage():
            await fake.user_message(fake.general_id, fake.alice, "during the outage", mention=True)
        await until(lambda: "echo: during the outage" in discord_texts(fake))
        await fake.user_message(fake.general_id, fake.alice, "sentinel", mention=True)
        await until(lambda: "echo: sentinel" in discord_texts(fake))
    assert fake.identifies == 3
    assert discord_texts(fake) == [
        "echo: first life",
        *(f"echo: while down {i}" for i in range(3)),
        "echo: during the outage",
        "echo: sentinel",
    ]


# Before the fix the backfill read the oldest ``backfill_limit`` messages after the last one
# seen and nothing else: whatever came after them was never read, and nobody was told.
async def test_discord_messages_beyond_the_backfill_window_are_announced_as_missed(
    discord_fake: FakeDiscord, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    fake = discord_fake
    settings = hub_settings(tmp_path, discord=discord_section(fake, backfill_limit=3))
    async with Hub(settings) as hub:
        await _first_life(fake, hub)
    down = [f"while down {i}" for i in range(5)]
    for text in down[:2]:
        await fake.user_message(fake.general_id, fake.alice, text, mention=True)
    await fake.user_message(fake.general_id, fake.bob, "chatter not for the bot")
    for text in down[2:]:
        await fake.user_message(fake.general_id, fake.alice, text, mention=True)
    with caplog.at_level(logging.WARNING, logger="channels.discord"):
        async with Hub(settings):
            # The newest three are read back and answered; the rest is announced, not dropped.
            await until(lambda: len(fake.created) == 5)
            await fake.user_message(fake.general_id, fake.alice, "sentinel", mention=True)
            await until(lambda: "echo: sentinel" in discord_texts(fake))
        async with Hub(settings):  # a later start answers nothing twice and announces nothing again
            await fake.user_message(fake.general_id, fake.alice, "sentinel 2", mention=True)
            await until(lambda: "echo: sentinel 2" in discord_texts(fake))
    texts = discord_texts(fake)
    [notice] = [t for t in texts if not t.startswith("echo: ")]
    assert texts == [
        "echo: first life",
        notice,
        *(f"echo: {t}" for t in down[2:]),
        "echo: sentinel",
        "echo: sentinel 2",
    ]
    assert "offline" in notice and "ask again" in notice
    assert all(c.message["channel_id"] == fake.general_id for c in fake.created)
    assert any("not read back" in r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)


# ====================================================================== 4. long replies
FAMILY = "\U0001f468\u200d\U0001f469\u200d\U0001f467\u200d\U0001f466"  # 7 code points, 11 UTF-16 units
FLAG_DE, FLAG_JP = "\U0001f1e9\U0001f1ea", "\U0001f1ef\U0001f1f5"
THUMB = "\U0001f44d\U0001f3fd"  # with a skin tone
KEYCAP = "1\ufe0f\u20e3"
CODE_LINES = [f"row_{i:03d} = check(a < {i}, b > {i}) & mask  # {THUMB}" for i in range(70)]


def long_reply() -> str:
    """About 10,000 characters: prose with emoji and HTML specials, a code block longer than
    any platform's message, and runs of emoji with no space to break at."""
    parts = [f"**Report** for `user<1>`, see [docs](https://en.wikipedia.org/wiki/Foo_(bar)) {FAMILY}\n"]
    for i in range(8):
        parts.append(
            f"Paragraph {i}: the quick brown fox & the lazy dog <3 {THUMB} {FAMILY} {FLAG_DE}{FLAG_JP} "
            f"{KEYCAP} café naïve Ωmega — {i * 7} < {i * 7 + 1} > {i}.\n"
        )
    parts.append("```python\n" + "\n".join(CODE_LINES) + "\n```\n")
    parts.append(FAMILY * 600 + "\n")  # 4,200 code points of one "word": longer than any part
    parts.append((FLAG_DE + FLAG_JP) * 301 + "\n")  # 2,408 regional indicators, no space
    text = "\n".join(parts)
    while len(text) < 10_000:
        text += f"\nTail line {len(text)}: {THUMB} & done."
    return text


TEXT = long_reply()
_NUMBER = re.compile(r"^\((\d+)/(\d+)\)[ \n]")
_FENCE_LINE = re.compile(r"^[ \t]*```[\w+#.-]*[ \t]*$", re.MULTILINE)


def _graphemes_intact(segments: list[str]) -> None:
    """No part ends or starts inside a user-perceived character (ZWJ sequence, flag, skin tone)."""
    for left, right in itertools.pairwise(segments):
        bounds, pos = {0}, 0
        for cluster in regex.findall(r"\X", left + right):
            pos += len(cluster)
            bounds.add(pos)
        assert len(left) in bounds, f"a character was cut: …{left[-8:]!r} | {right[:8]!r}…"


def _payloads(texts: list[str]) -> list[str]:
    """The parts without their ``(i/n)`` numbers, which must count up from 1."""
    if len(texts) == 1:
        return texts
    out = []
    for i, text in enumerate(texts, 1):
        m = _NUMBER.match(text)
        assert m is not None and (int(m.group(1)), int(m.group(2))) == (i, len(texts)), text[:20]
        out.append(text[m.end() :])
    return out


def _squash(text: str) -> str:
    return "".join(text.split())


def _check_fenced_parts(payloads: list[str]) -> list[str]:
    """Markdown parts (Discord, Slack): every fence opened in a part is closed in it, every code
    line of the source sits inside a fence; returns the parts without their fence lines."""
    inside: set[str] = set()
    for payload in payloads:
        fence = False
        for line in payload.split("\n"):
            if _FENCE_LINE.match(line):
                fence = not fence
            elif fence:
                inside.add(line.strip())
        assert not fence, "a part leaves its code block open"
    assert {html.unescape(line.strip()) for line in CODE_LINES} <= {html.unescape(s) for s in inside}
    return [_FENCE_LINE.sub("", p).strip() for p in payloads]


async def _telegram_reply(telegram: FakeTelegram, tmp_path: Path) -> list[str]:
    settings = hub_settings(tmp_path, telegram=telegram_section(telegram))
    async with Hub(settings, agent=FixedReply(TEXT)) as hub:
        telegram.inject_message(chat_id=ALICE, text="the long report, please")
        await until(lambda: hub.outbox is not None and hub.outbox.sent + hub.outbox.failed >= 1, within=30)
        assert hub.outbox.failed == 0
    return [m.text for m in telegram.messages(ALICE)]


def _check_telegram(sent: list[str]) -> None:
    visible = [parse_html(t) for t in sent]  # refused by the fake (and Telegram) if a tag or entity was cut
    assert all(len(v.encode("utf-16-le")) // 2 <= 4096 for v in visible)
    payloads = _payloads(visible)
    code = "\n".join(html.unescape(m) for t in sent for m in re.findall(r"<pre>(.*?)</pre>", t, re.DOTALL))
    code += "\n".join(
        html.unescape(m) for t in sent for m in re.findall(r"<pre><code[^>]*>(.*?)</code></pre>", t, re.DOTALL)
    )
    assert all(line in code for line in CODE_LINES), "a code line is outside every code block"
    _graphemes_intact([p.strip() for p in payloads])
    assert _squash("".join(payloads)) == _squash(parse_html(render(TEXT, "telegram_html")))


async def _discord_reply(fake: FakeDiscord, tmp_path: Path) -> list[str]:
    settings = hub_settings(tmp_path, discord=discord_section(fake))
    async with Hub(settings, agent=FixedReply(TEXT)) as hub:
        await fake.user_message(fake.general_id, fake.alice, "the long report, please", mention=True)
        await until(lambda: hub.outbox is not None and hub.outbox.sent + hub.outbox.failed >= 1, within=30)
        assert hub.outbox.failed == 0
    return discord_texts(fake)


def _check_discord(sent: list[str]) -> None:
    assert all(len(t) <= 2000 for t in sent)
    prose = _check_fenced_parts(_payloads(sent))
    _graphemes_intact(prose)
    assert _squash("".join(prose)) == _squash(_FENCE_LINE.sub("", TEXT))


async def _slack_reply(slack: FakeSlack, tmp_path: Path) -> list[str]:
    settings = hub_settings(tmp_path, slack=slack_section(slack))
    async with Hub(settings, agent=FixedReply(TEXT)) as hub:
        assert hub.gateway is not None
        url = f"http://127.0.0.1:{hub.gateway.bound_port}{EVENTS_PATH}"
        assert (await slack.send_event(url, slack.message_event("the long report, please"))).status == 200
        await until(lambda: hub.outbox is not None and hub.outbox.sent + hub.outbox.failed >= 1, within=30)
        assert hub.outbox.failed == 0
    return [p.text for p in slack.posts]


def _check_slack(sent: list[str]) -> None:
    assert all(len(t) <= SLACK_MAX for t in sent)
    assert not any(re.search(r"&(?!amp;|lt;|gt;)", t) for t in sent), "an escape was cut"
    prose = _check_fenced_parts(_payloads(sent))
    unescaped = [html.unescape(p) for p in prose]
    _graphemes_intact(unescaped)
    whole = html.unescape(_FENCE_LINE.sub("", render(TEXT, "slack_mrkdwn")))
    assert _squash("".join(unescaped)) == _squash(whole)


@pytest.mark.parametrize("platform", ["telegram", "discord", "slack"])
async def test_a_10000_character_reply_arrives_whole_in_parts_within_the_limit(
    platform: str,
    telegram: FakeTelegram,
    discord_fake: FakeDiscord,
    slack: FakeSlack,
    tmp_path: Path,
) -> None:
    assert len(TEXT) >= 10_000
    if platform == "telegram":
        sent = await _telegram_reply(telegram, tmp_path)
        _check_telegram(sent)
    elif platform == "discord":
        sent = await _discord_reply(discord_fake, tmp_path)
        _check_discord(sent)
    else:
        sent = await _slack_reply(slack, tmp_path)
        _check_slack(sent)
    assert len(sent) > 1


class FixedQuestion(FixedReply):
    """Answers with ``text`` and two buttons (an approval question, say)."""

    async def run(self, ctx: RunContext) -> AsyncIterator[Outbound]:
        buttons = (Button(id="yes-1", label="Yes"), Button(id="no-1", label="No"))
        yield Outbound(conversation=ctx.conversation, text=self.text, buttons=buttons, inbound_id=ctx.inbound.id)


async def test_slack_reply_with_buttons_keeps_emoji_whole_across_its_section_blocks(
    slack: FakeSlack, tmp_path: Path
) -> None:
    text = "Which one? " + FAMILY * 500  # one part (under 3,900), two sections of text
    async with Hub(hub_settings(tmp_path, slack=slack_section(slack)), agent=FixedQuestion(text)) as hub:
        assert hub.gateway is not None
        url = f"http://127.0.0.1:{hub.gateway.bound_port}{EVENTS_PATH}"
        assert (await slack.send_event(url, slack.message_event("ask me"))).status == 200
        await until(lambda: hub.outbox is not None and hub.outbox.sent + hub.outbox.failed >= 1, within=30)
        assert hub.outbox.failed == 0
    [post] = slack.posts
    sections = [b["text"]["text"] for b in post.blocks or () if b["type"] == "section"]
    assert len(sections) > 1 and all(len(t) <= 3000 for t in sections)
    assert _squash("".join(sections)) == _squash(render(text, "slack_mrkdwn"))
    _graphemes_intact(sections)


# ====================================================================== 5. Telegram's reserved characters
NASTY = (
    "Reserved: _ * [ ] ( ) ~ ` > # + - = | { } . ! and <b>not a tag</b> & &amp; &nbsp; 1 < 2 > 0\n\n"
    "unbalanced *bold and _italic and `code\n\n"
    "**half and **bold** end\n\n"
    "a [wiki link](https://en.wikipedia.org/wiki/Foo_(bar)) and **bold _both_** and a\\_escaped\\*\n\n"
    '```html\n<div class="x">&copy; `</div>\n```'
)
NASTY_VISIBLE = (
    "Reserved: _ * [ ] ( ) ~ ` > # + - = | { } . ! and <b>not a tag</b> & &amp; &nbsp; 1 < 2 > 0\n\n"
    "unbalanced *bold and _italic and `code\n\n"
    "**half and bold end\n\n"  # CommonMark: a closer belongs to the nearest opener
    "a wiki link and bold both and a_escaped*\n\n"
    '<div class="x">&copy; `</div>'
)


async def test_telegram_reserved_characters_are_shown_as_written(telegram: FakeTelegram, tmp_path: Path) -> None:
    async with Hub(hub_settings(tmp_path, telegram=telegram_section(telegram)), agent=FixedReply(NASTY)) as hub:
        telegram.inject_message(chat_id=ALICE, text="show me")
        await telegram.wait_until(lambda: bool(telegram.messages(ALICE)), within=10)
        assert hub.outbox is not None
        await until(lambda: hub.outbox.sent == 1)
    [sent] = telegram.messages(ALICE)
    assert sent.parse_mode == "HTML"
    assert parse_html(sent.text) == NASTY_VISIBLE
    assert '<a href="https://en.wikipedia.org/wiki/Foo_(bar)">wiki link</a>' in sent.text
    assert '<pre><code class="language-html">' in sent.text and "**half and <b>bold</b> end" in sent.text


async def test_telegram_refusing_the_entities_gets_the_text_as_plain_text(
    telegram: FakeTelegram, tmp_path: Path
) -> None:
    telegram.fail("sendMessage", kind="parse_entities")  # "Bad Request: can't parse entities: …"
    async with Hub(hub_settings(tmp_path, telegram=telegram_section(telegram)), agent=FixedReply(NASTY)) as hub:
        telegram.inject_message(chat_id=ALICE, text="show me")
        await telegram.wait_until(lambda: bool(telegram.messages(ALICE)), within=10)
        assert hub.outbox is not None
        await until(lambda: hub.outbox.sent == 1)
        assert hub.outbox.failed == 0
    [sent] = telegram.messages(ALICE)
    assert sent.parse_mode is None and sent.text == to_plain(NASTY)
    for kept in (
        "<b>not a tag</b> & &amp; &nbsp; 1 < 2 > 0",
        "wiki link (https://en.wikipedia.org/wiki/Foo_(bar))",
        '<div class="x">&copy; `</div>',
        "*bold and _italic and `code",
        "**half and bold end",
    ):
        assert kept in sent.text
    refused = telegram.method_calls("sendMessage")[0]
    assert refused["parse_mode"] == "HTML"
