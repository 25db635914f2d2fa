"""The Telegram channel through unmodified python-telegram-bot against the local fake Bot API."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import ClientSession, web
from aiohttp.test_utils import TestServer
from pydantic import ValidationError

from channels.telegram import TelegramChannel, TelegramConfig
from hub.channel import ChannelContext, CommandInfo
from hub.errors import ChannelError
from hub.messages import Button, ConversationRef, Inbound, Outbound
from tests.channels.support import TELEGRAM_TIMINGS, MemoryState
from tests.fakes.telegram import FakeTelegram, parse_html

# PTB's own RetryAfter constructor reads its deprecated int-valued ``retry_after`` (PTB 22.2+).
pytestmark = pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")

ALICE = 1001
GROUP = -100500
SECRET = "s3cret_webhook-token"


class RecordingInbox:
    """Stands in for the hub's inbox: dedupes on (channel, platform_id) like the store will."""

    def __init__(self) -> None:
        self.items: list[Inbound] = []
        self.calls = 0
        self.fail_next = 0
        self.gate: asyncio.Event | None = None
        self.entered = asyncio.Event()
        self._keys: set[tuple[str, str]] = set()
        self._changed = asyncio.Event()

    async def __call__(self, inbound: Inbound) -> bool:
        self.calls += 1
        self.entered.set()
        if self.gate is not None:
            await self.gate.wait()
        if self.fail_next:
            self.fail_next -= 1
            raise RuntimeError("database is locked")
        key = (inbound.conversation.channel, inbound.platform_id)
        if key in self._keys:
            return False
        self._keys.add(key)
        self.items.append(inbound)
        self._changed.set()
        self._changed = asyncio.Event()
        return True

    async def wait_for(self, count: int, within: float = 5.0) -> list[Inbound]:
        async with asyncio.timeout(within):
            while len(self.items) < count:
                await self._changed.wait()
        return self.items


def make_config(fake: FakeTelegram, **overrides: Any) -> TelegramConfig:
    values: dict[str, Any] = {
        "enabled": True,
        "token": fake.token,
        "base_url": fake.base_url,
        "base_file_url": fake.base_file_url,
        "poll_timeout": 5,
        "allow_users": [str(ALICE)],
        "max_document_bytes": 1000,
        **TELEGRAM_TIMINGS,
    }
    values.update(overrides)
    return TelegramConfig.model_validate(values)


def make_channel(fake: FakeTelegram, **overrides: Any) -> tuple[TelegramChannel, ChannelContext]:
    context = ChannelContext(
        state=MemoryState(),
        commands=[
            CommandInfo(name="help", description="Show help"),
            CommandInfo(name="new", description="Reset"),
        ],
    )
    return TelegramChannel("telegram", make_config(fake, **overrides), context), context


@pytest.fixture
async def fake() -> AsyncIterator[FakeTelegram]:
    async with FakeTelegram() as tg:
        yield tg


@pytest.fixture
async def inbox() -> RecordingInbox:
    return RecordingInbox()


@pytest.fixture
async def channel(fake: FakeTelegram, inbox: RecordingInbox) -> AsyncIterator[TelegramChannel]:
    ch, _ = make_channel(fake)
    await ch.start(inbox)
    try:
        yield ch
    finally:
        await ch.stop()


def conv(chat: int) -> ConversationRef:
    return ConversationRef(channel="telegram", chat=str(chat))


# ---------------------------------------------------------------------------- basics


async def test_direct_message_reaches_inbox_and_is_answered(
    fake: FakeTelegram, inbox: RecordingInbox, channel: TelegramChannel
) -> None:
    update = fake.inject_message(chat_id=ALICE, text="hello bot")
    [inbound] = await inbox.wait_for(1)
    assert inbound.kind == "message" and inbound.text == "hello bot"
    assert inbound.direct and not inbound.mentioned
    assert inbound.conversation == conv(ALICE)
    assert inbound.sender.id == str(ALICE) and inbound.sender.username == "alice"
    assert inbound.platform_id == f"message:{ALICE}:{update['message']['message_id']}"  # update ids restart
    assert inbound.reply_to_platform_id == str(update["message"]["message_id"])

    delivery = await channel.send(
        Outbound(
            conversation=inbound.conversation, text="**Hi** <there>", reply_to_platform_id=inbound.reply_to_platform_id
        )
    )
    [sent] = fake.messages(ALICE)
    assert delivery.platform_ids == (str(sent.message_id),)
    assert sent.parse_mode == "HTML"
    assert parse_html(sent.text) == "Hi <there>"
    assert "<b>Hi</b>" in sent.text
    assert sent.reply_to is None  # private chats are not threaded


async def test_start_registers_commands_and_greets(
    fake: FakeTelegram, inbox: RecordingInbox, channel: TelegramChannel
) -> None:
    names = [c["command"] for c in fake.commands]
    assert names == ["start", "help", "new"]
    assert fake.method_calls("deleteWebhook")
    for call in fake.method_calls("deleteWebhook"):
        assert call.get("drop_pending_updates") in (None, False, "false")
    fake.inject_message(chat_id=ALICE, text="/start")
    await fake.wait_until(lambda: len(fake.messages(ALICE)) == 1)
    assert "/help" in fake.messages(ALICE)[0].text
    assert inbox.items == []


async def test_group_messages_only_when_addressed(
    fake: FakeTelegram, inbox: RecordingInbox, channel: TelegramChannel
) -> None:
    g: dict[str, Any] = {"chat_id": GROUP, "user_id": ALICE, "chat_type": "supergroup"}
    fake.inject_message(**g, text="just chatting")
    fake.inject_message(**g, text="/help@otherbot")
    fake.inject_message(**g, text="hey @autohands_bot what time is it")
    fake.inject_message(**g, text="/remind@autohands_bot 5m tea")
    items = await inbox.wait_for(2)
    assert [i.kind for i in items] == ["message", "command"]
    assert items[0].text == "hey what time is it"
    assert items[0].mentioned and not items[0].direct
    assert items[1].command == "remind" and items[1].text == "5m tea"

    reply = await channel.send(
        Outbound(conversation=items[0].conversation, text="noon", reply_to_platform_id=items[0].reply_to_platform_id)
    )
    bot_msg = int(reply.platform_ids[0])
    assert fake.messages(GROUP)[0].reply_to == int(items[0].reply_to_platform_id or 0)

    fake.inject_message(**g, text="thanks!", reply_to_message_id=bot_msg)
    items = await inbox.wait_for(3)
    assert items[2].text == "thanks!" and items[2].mentioned
    await fake.wait_until(lambda: fake.confirmed_offset > 0 and not fake.pending)
    assert len(inbox.items) == 3  # the un-addressed ones never reached the inbox


async def test_forum_topic_becomes_thread(fake: FakeTelegram, inbox: RecordingInbox, channel: TelegramChannel) -> None:
    fake.inject_message(chat_id=GROUP, user_id=ALICE, chat_type="supergroup", thread_id=77, text="@autohands_bot hi")
    [inbound] = await inbox.wait_for(1)
    assert inbound.conversation.thread == "77"
    await channel.send(Outbound(conversation=inbound.conversation, text="hi", final=True))
    assert fake.messages(GROUP)[0].thread_id == 77


async def test_group_policy_all_and_admin_flag(fake: FakeTelegram, inbox: RecordingInbox) -> None:
    ch, _ = make_channel(
        fake, group_policy="commands", chat_policies={str(GROUP): "all"}, admins=["@Alice"], allow_users=[]
    )
    await ch.start(inbox)
    try:
        fake.inject_message(chat_id=GROUP, user_id=ALICE, chat_type="supergroup", text="no mention needed")
        [inbound] = await inbox.wait_for(1)
    finally:
        await ch.stop()
    assert inbound.text == "no mention needed" and not inbound.mentioned
    assert inbound.sender.is_admin


# ---------------------------------------------------------------------------- delivery


async def test_long_answer_is_split_in_numbered_parts(fake: FakeTelegram, channel: TelegramChannel) -> None:
    text = "\n\n".join(f"Paragraph {i}: " + "word " * 150 for i in range(20))  # ~15k chars
    delivery = await channel.send(Outbound(conversation=conv(ALICE), text=text))
    sent = fake.messages(ALICE)
    assert len(sent) == len(delivery.platform_ids) >= 4
    for i, part in enumerate(sent, 1):
        visible = parse_html(part.text) if part.parse_mode else part.text
        assert len(visible) <= 4096
        assert visible.startswith(f"({i}/{len(sent)})")
    assert "Paragraph 19" in sent[-1].text


async def test_streamed_partials_edit_one_message(fake: FakeTelegram, channel: TelegramChannel) -> None:
    c = conv(ALICE)
    for text in ("Thinking", "Thinking about", "Thinking about it"):
        await channel.send(Outbound(conversation=c, text=text, final=False, stream="s1"))
    await channel.send(Outbound(conversation=c, text="Thinking about it: **42**", stream="s1"))
    [message] = fake.messages(ALICE)
    assert parse_html(message.text) == "Thinking about it: 42"
    assert fake.edits and fake.edits[-1].message_id == message.message_id


async def test_button_tap_becomes_button_inbound_and_is_answered(
    fake: FakeTelegram, inbox: RecordingInbox, channel: TelegramChannel
) -> None:
    buttons = (Button(id="ap1:yes", label="Approve"), Button(id="ap1:no", label="Deny", style="danger"))
    delivery = await channel.send(Outbound(conversation=conv(ALICE), text="Run `rm`?", buttons=buttons))
    [sent] = fake.messages(ALICE)
    assert sent.buttons == [("Approve", "ap1:yes"), ("Deny", "ap1:no")]
    fake.inject_callback(chat_id=ALICE, message_id=int(delivery.platform_ids[0]), data="ap1:yes")
    [inbound] = await inbox.wait_for(1)
    assert inbound.kind == "button" and inbound.button == "ap1:yes"
    assert inbound.sender.id == str(ALICE)
    await fake.wait_until(lambda: len(fake.answered) == 1)


async def test_formatting_rejection_falls_back_to_plain(fake: FakeTelegram, channel: TelegramChannel) -> None:
    fake.fail("sendMessage", kind="parse_entities")
    await channel.send(Outbound(conversation=conv(ALICE), text="**bold** and `code`"))
    [sent] = fake.messages(ALICE)
    assert sent.parse_mode is None
    assert "bold" in sent.text and "<b>" not in sent.text


async def test_typing_indicator(fake: FakeTelegram, channel: TelegramChannel) -> None:
    await channel.send(Outbound(conversation=conv(ALICE), text="", typing=True))
    assert [(a.chat_id, a.action) for a in fake.actions] == [(ALICE, "typing")]
    assert fake.messages(ALICE) == []


async def test_send_429_is_survived_without_doubles(fake: FakeTelegram, channel: TelegramChannel) -> None:
    fake.fail("sendMessage", retry_after=1)
    out = Outbound(conversation=conv(ALICE), text="once")
    try:
        delivery = await channel.send(out)
    except ChannelError as exc:  # the outbox retries transient errors after retry_after
        assert exc.retryable and exc.retry_after == 1
        delivery = await channel.send(out)
    assert len(fake.messages(ALICE)) == 1
    assert delivery.platform_ids == (str(fake.messages(ALICE)[0].message_id),)


async def test_permanent_error_is_not_retryable(fake: FakeTelegram, channel: TelegramChannel) -> None:
    fake.fail("sendMessage", kind="forbidden")
    with pytest.raises(ChannelError) as info:
        await channel.send(Outbound(conversation=conv(ALICE), text="hi"))
    assert info.value.retryable is False and info.value.status == 403


# ---------------------------------------------------------------------------- access


async def test_unknown_user_refused_once(fake: FakeTelegram, inbox: RecordingInbox, channel: TelegramChannel) -> None:
    fake.inject_message(chat_id=4242, text="let me in")
    fake.inject_message(chat_id=4242, text="please?")
    fake.inject_message(chat_id=GROUP, user_id=4242, chat_type="supergroup", text="@autohands_bot hi")
    fake.inject_message(chat_id=ALICE, text="I am allowed")
    await inbox.wait_for(1)
    await fake.wait_until(lambda: not fake.pending and fake.confirmed_offset > 0)
    assert [i.sender.id for i in inbox.items] == [str(ALICE)]
    assert len(fake.messages(4242)) == 1  # one polite refusal, not one per message
    assert fake.messages(GROUP) == []  # silence in groups


# ---------------------------------------------------------------------------- ingress reliability


async def test_getupdates_429_and_5xx_are_survived(fake: FakeTelegram, inbox: RecordingInbox) -> None:
    fake.fail("getUpdates", retry_after=1)
    fake.fail("getUpdates", kind="server_error")
    fake.inject_message(chat_id=ALICE, text="still there?")
    ch, _ = make_channel(fake)
    await ch.start(inbox)
    try:
        await inbox.wait_for(1, within=10)
        fake.inject_message(chat_id=ALICE, text="second")
        await inbox.wait_for(2)
    finally:
        await ch.stop()
    assert [i.text for i in inbox.items] == ["still there?", "second"]


async def test_same_update_twice_gives_one_inbound(fake: FakeTelegram, inbox: RecordingInbox) -> None:
    update = fake.inject_message(chat_id=ALICE, text="dup")
    fake.redeliver(update)
    ch, _ = make_channel(fake)
    await ch.start(inbox)
    try:
        await inbox.wait_for(1)
        fake.redeliver(update)
        fake.inject_message(chat_id=ALICE, text="next")
        await inbox.wait_for(2)
    finally:
        await ch.stop()
    assert [i.text for i in inbox.items] == ["dup", "next"]
    assert inbox.calls == 2  # the in-memory set stopped the redeliveries before the store


async def test_backlog_processed_after_start_and_restart(fake: FakeTelegram, inbox: RecordingInbox) -> None:
    fake.inject_message(chat_id=ALICE, text="while down 1")
    fake.inject_message(chat_id=ALICE, text="while down 2")
    ch, _ = make_channel(fake)
    await ch.start(inbox)
    await inbox.wait_for(2)
    await ch.stop()
    assert fake.dropped_pending == 0
    fake.inject_message(chat_id=ALICE, text="while down 3")
    ch2, _ = make_channel(fake)
    await ch2.start(inbox)
    try:
        await inbox.wait_for(3)
    finally:
        await ch2.stop()
    assert [i.text for i in inbox.items] == ["while down 1", "while down 2", "while down 3"]
    assert inbox.calls == 3  # the graceful stop confirmed what was committed
    assert fake.method_calls("getUpdates")[0].get("offset") is None  # the backlog is read


async def test_offset_advances_only_after_inbox_returned(fake: FakeTelegram, inbox: RecordingInbox) -> None:
    inbox.gate = asyncio.Event()
    update = fake.inject_message(chat_id=ALICE, text="commit me first")
    ch, _ = make_channel(fake)
    await ch.start(inbox)
    try:
        await asyncio.wait_for(inbox.entered.wait(), 5)
        await asyncio.sleep(0.2)  # give a wrong implementation time to poll again
        assert fake.confirmed_offset <= update["update_id"]
        assert update in fake.pending
        inbox.gate.set()
        await fake.wait_until(lambda: fake.confirmed_offset == update["update_id"] + 1)
    finally:
        await ch.stop()


async def test_inbox_failure_leaves_update_unconfirmed_and_retries(fake: FakeTelegram, inbox: RecordingInbox) -> None:
    inbox.fail_next = 1
    update = fake.inject_message(chat_id=ALICE, text="retry me")
    ch, _ = make_channel(fake)
    await ch.start(inbox)
    try:
        await asyncio.wait_for(inbox.entered.wait(), 5)
        assert fake.confirmed_offset <= update["update_id"]
        [inbound] = await inbox.wait_for(1, within=10)
        assert inbound.text == "retry me"
        await fake.wait_until(lambda: fake.confirmed_offset == update["update_id"] + 1)
    finally:
        await ch.stop()
    assert inbox.calls == 2


# ---------------------------------------------------------------------------- media


async def test_text_document_attached_and_photo_refused(
    fake: FakeTelegram, inbox: RecordingInbox, channel: TelegramChannel
) -> None:
    fake.inject_document(
        chat_id=ALICE,
        file_name="notes.md",
        content=b"# Notes\nbuy milk",
        mime_type="application/octet-stream",
        caption="summarise",
    )
    [inbound] = await inbox.wait_for(1)
    assert inbound.text == "summarise"
    [att] = inbound.attachments
    assert att.name == "notes.md" and att.text == "# Notes\nbuy milk" and att.size == 16

    fake.inject_photo(chat_id=ALICE)
    fake.inject_document(chat_id=ALICE, file_name="big.txt", content=b"x" * 5000)
    fake.inject_document(chat_id=ALICE, file_name="a.pdf", content=b"%PDF", mime_type="application/pdf")
    await fake.wait_until(lambda: len(fake.messages(ALICE)) == 3)
    texts = [m.text for m in fake.messages(ALICE)]
    assert "photos" in texts[0] and "can't" in texts[0]
    assert "too large" in texts[1]
    assert "can't read" in texts[2]
    assert len(inbox.items) == 1


# ---------------------------------------------------------------------------- webhook


async def _webhook_server(context: ChannelContext) -> TestServer:
    app = web.Application()
    for method, path, handler in context.routes:
        app.router.add_route(method, path, handler)
    server = TestServer(app, host="127.0.0.1", port=0)
    await server.start_server()
    return server


async def test_webhook_mode_checks_the_secret(
    fake: FakeTelegram, inbox: RecordingInbox, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    ch, context = make_channel(
        fake, mode="webhook", webhook_url="https://hub.example/telegram/webhook", webhook_secret=SECRET
    )
    server = await _webhook_server(context)
    await ch.start(inbox)
    try:
        assert fake.webhook_url == "https://hub.example/telegram/webhook"
        assert fake.webhook_secret == SECRET
        url = str(server.make_url("/telegram/webhook"))
        update = fake.inject_message(chat_id=ALICE, text="via webhook")
        assert await fake.post_webhook(update, url=url, secret_token=None) == 403
        assert await fake.post_webhook(update, url=url, secret_token="wrong-guess") == 403
        assert inbox.calls == 0
        assert await fake.post_webhook(update, url=url) == 200
        assert [i.text for i in inbox.items] == ["via webhook"]
        assert await fake.post_webhook(update, url=url) == 200  # a retry: acknowledged, not doubled
        assert len(inbox.items) == 1
        inbox.fail_next = 1
        second = fake.inject_message(chat_id=ALICE, text="store down")
        assert await fake.post_webhook(second, url=url) == 500  # not acknowledged: Telegram retries
        assert await fake.post_webhook(second, url=url) == 200
        assert [i.text for i in inbox.items] == ["via webhook", "store down"]
        async with (
            ClientSession() as s,
            s.post(url, data="not json", headers={"X-Telegram-Bot-Api-Secret-Token": SECRET}) as r,
        ):
            assert r.status == 400
    finally:
        await ch.stop()
        await server.close()
    assert "wrong-guess" not in caplog.text
    assert SECRET not in caplog.text


def test_config_validation() -> None:
    base = {"token": "1:x"}
    TelegramConfig.model_validate(base)
    with pytest.raises(ValidationError, match="webhook_secret"):
        TelegramConfig.model_validate({**base, "mode": "webhook", "webhook_url": "https://x/telegram/webhook"})
    with pytest.raises(ValidationError, match="webhook_secret"):
        TelegramConfig.model_validate(
            {**base, "mode": "webhook", "webhook_url": "https://x/y", "webhook_secret": "has space"}
        )
    with pytest.raises(ValidationError, match="webhook_url"):
        TelegramConfig.model_validate({**base, "mode": "webhook", "webhook_secret": "ok"})
    with pytest.raises(ValidationError):
        TelegramConfig.model_validate({**base, "tokn": "typo"})
    with pytest.raises(ValidationError):
        TelegramConfig.model_validate({})


# ---------------------------------------------------------------------------- secrets and lifecycle


async def test_token_never_logged(fake: FakeTelegram, inbox: RecordingInbox, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    ch, _ = make_channel(fake)
    await ch.start(inbox)
    try:
        fake.inject_message(chat_id=ALICE, text="hi")
        fake.inject_document(chat_id=ALICE, file_name="a.txt", content=b"file")
        await inbox.wait_for(2)
        await ch.send(Outbound(conversation=conv(ALICE), text="hello"))
        fake.fail("sendMessage", kind="server_error")
        with pytest.raises(ChannelError):
            await ch.send(Outbound(conversation=conv(ALICE), text="boom"))
    finally:
        await ch.stop()
    assert caplog.records, "PTB/httpx should have logged at DEBUG"
    assert any("***" in r.getMessage() for r in caplog.records)
    secret_part = fake.token.split(":")[1]
    assert secret_part not in caplog.text
    for record in caplog.records:
        assert secret_part not in record.getMessage()


async def test_bad_token_fails_start_clearly(fake: FakeTelegram, inbox: RecordingInbox) -> None:
    ch, _ = make_channel(fake, token="999:wrong")
    with pytest.raises(ChannelError, match=r"token was rejected.*channels\.telegram\.token") as info:
        await ch.start(inbox)
    assert info.value.retryable is False
    await ch.stop()  # stop after a failed start is a no-op


async def test_start_twice_is_refused(fake: FakeTelegram, inbox: RecordingInbox, channel: TelegramChannel) -> None:
    with pytest.raises(RuntimeError, match="already started"):
        await channel.start(inbox)


async def test_conflict_with_another_poller_is_survived(
    fake: FakeTelegram, inbox: RecordingInbox, caplog: pytest.LogCaptureFixture
) -> None:
    ch, _ = make_channel(fake)
    await ch.start(inbox)
    try:
        await fake.wait_until(lambda: fake._poll is not None)
        await _rival_poll(fake)  # a second instance on the same token ends our long poll with 409
        await fake.wait_until(lambda: "another instance is polling" in caplog.text, within=5)
        fake.inject_message(chat_id=ALICE, text="after conflict")
        await inbox.wait_for(1, within=10)
    finally:
        await ch.stop()


async def _rival_poll(fake: FakeTelegram) -> None:
    async with ClientSession() as s, s.post(f"{fake.base_url}{fake.token}/getUpdates", json={"timeout": 0}) as r:
        await r.read()
