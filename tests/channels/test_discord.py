"""The Discord adapter through discord.py, unmodified, against the local fake (REST + gateway)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import pytest
from discord.gateway import DiscordWebSocket
from discord.http import Route

from channels.discord import DiscordChannel, DiscordConfig
from hub.channel import ChannelContext
from hub.config import validate_section
from hub.errors import ChannelError, ConfigError
from hub.messages import Button, ConversationRef, Inbound, Outbound
from tests.channels.support import MemoryState
from tests.fakes.discord import FakeDiscord

LIVENESS = 0.6


class RecordingInbox:
    """Records inbounds and deduplicates on ``platform_id`` like the store does."""

    def __init__(self) -> None:
        self.inbounds: list[Inbound] = []
        self.calls = 0
        self._changed = asyncio.Condition()

    async def __call__(self, inbound: Inbound) -> bool:
        self.calls += 1
        if any(i.platform_id == inbound.platform_id for i in self.inbounds):
            return False
        async with self._changed:
            self.inbounds.append(inbound)
            self._changed.notify_all()
        return True

    async def wait_for(self, text: str, within: float = 10.0) -> Inbound:
        async def find() -> Inbound:
            async with self._changed:
                while True:
                    for inbound in self.inbounds:
                        if inbound.text == text or inbound.button == text:
                            return inbound
                    await self._changed.wait()

        return await asyncio.wait_for(find(), within)


@pytest.fixture(autouse=True)
def _restore_sdk_urls() -> object:
    saved = Route.BASE, DiscordWebSocket.DEFAULT_GATEWAY
    yield
    Route.BASE, DiscordWebSocket.DEFAULT_GATEWAY = saved


@pytest.fixture
async def fake() -> AsyncIterator[FakeDiscord]:
    async with FakeDiscord(heartbeat_interval_ms=100) as server:
        yield server


def make_config(fake: FakeDiscord, **overrides: object) -> DiscordConfig:
    values: dict[str, object] = {
        "enabled": True,
        "token": fake.token,
        "api_base": fake.api_base,
        "gateway_url": fake.gateway_url,
        "liveness_timeout_seconds": LIVENESS,
        "identify_delay_seconds": 0,
        "guild_ready_timeout_seconds": 0.05,
        "allow_users": [fake.alice["id"], "bob"],  # by id and by username
    }
    values.update(overrides)
    return DiscordConfig.model_validate(values)


@pytest.fixture
def state() -> MemoryState:
    return MemoryState()


@pytest.fixture
def inbox() -> RecordingInbox:
    return RecordingInbox()


@pytest.fixture
async def channel(fake: FakeDiscord, state: MemoryState, inbox: RecordingInbox) -> AsyncIterator[DiscordChannel]:
    ch = DiscordChannel("discord", make_config(fake), ChannelContext(state=state))
    await ch.start(inbox)
    try:
        yield ch
    finally:
        await ch.stop()


def reply(inbound: Inbound, text: str, **kw: object) -> Outbound:
    to = inbound.reply_to_platform_id
    return Outbound(conversation=inbound.conversation, text=text, reply_to_platform_id=to, **kw)  # type: ignore[arg-type]


async def until(predicate: Callable[[], object], within: float = 5.0) -> None:
    """For the fake's records, which have no event to wait on (bounded by ``within``)."""

    async def poll() -> None:
        while not predicate():  # noqa: ASYNC110
            await asyncio.sleep(0.02)

    await asyncio.wait_for(poll(), within)


# ---------------------------------------------------------------------- conversations


async def test_mention_is_answered_with_a_reply_to_the_message(
    fake: FakeDiscord, channel: DiscordChannel, inbox: RecordingInbox
) -> None:
    msg = await fake.user_message(fake.general_id, fake.alice, "what is **2+2**?", mention=True)
    inbound = await inbox.wait_for("what is **2+2**?")
    assert inbound.kind == "message" and inbound.mentioned and not inbound.direct
    assert inbound.conversation == ConversationRef(channel="discord", chat=fake.general_id)
    assert inbound.sender.id == fake.alice["id"] and inbound.reply_to_platform_id == msg["id"] == inbound.platform_id

    out = reply(inbound, "It is **4**. @everyone")
    delivery = await channel.send(out)
    (created,) = fake.created
    assert delivery.platform_ids == (created.message["id"],)
    assert created.message["message_reference"]["message_id"] == msg["id"]
    assert created.payload["nonce"].startswith(out.id) and created.payload["enforce_nonce"] is True
    # Model text cannot ping: no parse list, only the replied-to user.
    assert created.payload["allowed_mentions"] == {"parse": [], "replied_user": True} or (
        created.payload["allowed_mentions"]["parse"] == [] and created.payload["allowed_mentions"]["replied_user"]
    )
    assert "**4**" in created.message["content"]


async def test_dm_is_answered(fake: FakeDiscord, channel: DiscordChannel, inbox: RecordingInbox) -> None:
    msg = await fake.dm(fake.bob, "hello in private")
    inbound = await inbox.wait_for("hello in private")
    assert inbound.direct and inbound.conversation.chat == fake.dm_channel(fake.bob)
    await channel.send(reply(inbound, "hi Bob"))
    assert fake.created[0].message["channel_id"] == msg["channel_id"]
    assert fake.created[0].message["content"] == "hi Bob"
    # The gateway echoed our post (even if before the REST answer): no false "deaf" reconnect.
    await asyncio.sleep(LIVENESS * 1.5)
    assert fake.resumes == 0 and fake.connections == 1


async def test_unmentioned_guild_message_is_ignored_but_a_reply_to_the_bot_is_not(
    fake: FakeDiscord, channel: DiscordChannel, inbox: RecordingInbox
) -> None:
    await fake.user_message(fake.general_id, fake.alice, "just chatting")
    await fake.user_message(fake.general_id, fake.other_bot, "a bot mentions", mention=True)
    first = await fake.user_message(fake.general_id, fake.alice, "question", mention=True)
    inbound = await inbox.wait_for("question")
    await channel.send(reply(inbound, "answer"))
    bot_msg = fake.created[0].message["id"]
    await fake.user_message(fake.general_id, fake.bob, "follow-up without mention", reply_to=bot_msg)
    follow = await inbox.wait_for("follow-up without mention")
    assert follow.mentioned
    assert [i.text for i in inbox.inbounds] == ["question", "follow-up without mention"]
    assert first["id"] == inbound.platform_id


async def test_thread_is_its_own_conversation_and_replies_go_into_it(
    fake: FakeDiscord, channel: DiscordChannel, inbox: RecordingInbox
) -> None:
    await fake.user_message(fake.thread_id, fake.alice, "in a thread", mention=True)
    inbound = await inbox.wait_for("in a thread")
    assert inbound.conversation == ConversationRef(channel="discord", chat=fake.general_id, thread=fake.thread_id)
    await channel.send(reply(inbound, "thread answer"))
    assert fake.created[0].message["channel_id"] == fake.thread_id


async def test_long_answer_is_split_at_2000(fake: FakeDiscord, channel: DiscordChannel, inbox: RecordingInbox) -> None:
    await fake.user_message(fake.general_id, fake.alice, "long please", mention=True)
    inbound = await inbox.wait_for("long please")
    text = "\n\n".join(f"Paragraph {i}: " + "word " * 60 for i in range(25))
    delivery = await channel.send(reply(inbound, text))
    assert len(fake.created) >= 3 and len(delivery.platform_ids) == len(fake.created)
    assert all(len(c.message["content"]) <= 2000 for c in fake.created)
    nonces = [c.payload["nonce"] for c in fake.created]
    assert len(set(nonces)) == len(nonces)
    joined = " ".join(c.message["content"] for c in fake.created)
    assert "Paragraph 0:" in joined and "Paragraph 24:" in joined


async def test_streamed_answer_is_edited_in_place(
    fake: FakeDiscord, channel: DiscordChannel, inbox: RecordingInbox
) -> None:
    await fake.user_message(fake.general_id, fake.alice, "stream it", mention=True)
    inbound = await inbox.wait_for("stream it")
    await channel.send(reply(inbound, "Thinking", final=False, stream="s1"))
    await channel.send(reply(inbound, "Thinking about it", final=False, stream="s1"))
    delivery = await channel.send(reply(inbound, "Thinking about it: done.", stream="s1"))
    assert len(fake.created) == 1
    (message_id,) = delivery.platform_ids
    assert message_id == fake.created[0].message["id"]
    assert fake.edits and fake.edits[-1][0] == message_id
    assert fake.created[0].message["content"] == "Thinking about it: done."


async def test_typing_indicator(fake: FakeDiscord, channel: DiscordChannel, inbox: RecordingInbox) -> None:
    await fake.user_message(fake.general_id, fake.alice, "type", mention=True)
    inbound = await inbox.wait_for("type")
    await channel.send(reply(inbound, "", typing=True))
    assert fake.typing == [fake.general_id] and not fake.created


async def test_button_click_arrives_with_the_clicking_user(
    fake: FakeDiscord, channel: DiscordChannel, inbox: RecordingInbox
) -> None:
    await fake.user_message(fake.general_id, fake.alice, "delete files", mention=True)
    inbound = await inbox.wait_for("delete files")
    buttons = (Button(id="approve-1", label="Approve", style="primary"), Button(id="deny-1", label="Deny"))
    delivery = await channel.send(reply(inbound, "Allow deleting?", buttons=buttons))
    components = fake.created[0].payload["components"]
    assert [c["custom_id"] for row in components for c in row["components"]] == ["approve-1", "deny-1"]

    record = await fake.click_button(delivery.platform_ids[0], "approve-1", fake.bob)
    click = await inbox.wait_for("approve-1")
    assert click.kind == "button" and click.sender.id == fake.bob["id"]
    assert click.conversation == inbound.conversation
    await until(lambda: record.callbacks)
    body, elapsed = record.callbacks[0]
    assert body["type"] == 6 and elapsed < 3.0  # deferred update, inside Discord's deadline


async def test_strangers_are_refused_in_dms_and_ignored_in_guilds(
    fake: FakeDiscord, channel: DiscordChannel, inbox: RecordingInbox
) -> None:
    await fake.user_message(fake.general_id, fake.carol, "let me in", mention=True)
    await fake.dm(fake.carol, "hello?")
    await until(lambda: fake.created)
    (refusal,) = fake.created
    assert refusal.message["channel_id"] == fake.dm_channel(fake.carol)
    assert fake.carol["id"] in refusal.message["content"]  # tells them the id to allow
    await fake.dm(fake.bob, "bob by username")
    await inbox.wait_for("bob by username")
    assert [i.text for i in inbox.inbounds] == ["bob by username"]


# ---------------------------------------------------------------------- exactly once


async def test_redelivered_message_is_passed_on_once(
    fake: FakeDiscord, channel: DiscordChannel, inbox: RecordingInbox
) -> None:
    msg = await fake.user_message(fake.general_id, fake.alice, "once", mention=True)
    await inbox.wait_for("once")
    await fake.redeliver(msg)
    await fake.user_message(fake.general_id, fake.alice, "marker", mention=True)
    await inbox.wait_for("marker")
    assert [i.text for i in inbox.inbounds] == ["once", "marker"]


async def test_429_is_survived_and_a_resend_after_restart_is_not_doubled(
    fake: FakeDiscord, channel: DiscordChannel, inbox: RecordingInbox, state: MemoryState
) -> None:
    await fake.user_message(fake.general_id, fake.alice, "rate", mention=True)
    inbound = await inbox.wait_for("rate")
    fake.fail_next("POST", "/messages", 429, retry_after=0.2)
    out = reply(inbound, "after the limit")
    first = await channel.send(out)
    posts = [c for c in fake.rest_calls if c[0] == "POST" and c[1].endswith("/messages")]
    assert len(fake.created) == 1 and len(posts) == 2  # the 429, then the retry
    # A crash lost the answer; the restarted hub re-sends the outbox row: same id → same nonce.
    await channel.stop()
    again = DiscordChannel("discord", make_config(fake), ChannelContext(state=state))
    await again.start(RecordingInbox())
    try:
        second = await again.send(out)
    finally:
        await again.stop()
    assert second.platform_ids == first.platform_ids
    assert len(fake.messages[fake.general_id]) == 2  # the user's message and one answer


async def test_lost_answer_retried_by_the_sdk_is_not_doubled(
    fake: FakeDiscord, channel: DiscordChannel, inbox: RecordingInbox
) -> None:
    await fake.user_message(fake.general_id, fake.alice, "flaky", mention=True)
    inbound = await inbox.wait_for("flaky")
    fake.fail_next("POST", "/messages", 500, after_effect=True)  # created, then a 500
    delivery = await channel.send(reply(inbound, "exactly one"))
    bot_messages = [m for m in fake.messages[fake.general_id] if m["author"]["id"] == fake.bot["id"]]
    assert len(bot_messages) == 1 and delivery.platform_ids == (bot_messages[0]["id"],)


async def test_client_errors_map_to_permanent_channel_errors(fake: FakeDiscord, channel: DiscordChannel) -> None:
    conv = ConversationRef(channel="discord", chat="123456789")
    with pytest.raises(ChannelError) as info:
        await channel.send(Outbound(conversation=conv, text="nowhere"))
    assert info.value.retryable is False and info.value.status == 404


# ---------------------------------------------------------------------- connection faults


async def test_reconnect_that_cannot_resume_backfills_the_gap(
    fake: FakeDiscord, channel: DiscordChannel, inbox: RecordingInbox, state: MemoryState
) -> None:
    first = await fake.user_message(fake.general_id, fake.alice, "before", mention=True)
    await inbox.wait_for("before")
    await until(lambda: state.data.get(f"last_seen:{fake.general_id}") == first["id"])
    async with fake.outage():
        await fake.user_message(fake.general_id, fake.alice, "during the gap", mention=True)
        await fake.user_message(fake.general_id, fake.bob, "unaddressed gap chatter")
    gap = await inbox.wait_for("during the gap")
    assert gap.conversation.chat == fake.general_id and fake.identifies == 2
    await fake.user_message(fake.general_id, fake.alice, "after", mention=True)
    await inbox.wait_for("after")
    assert [i.text for i in inbox.inbounds] == ["before", "during the gap", "after"]


async def test_zombie_connection_is_detected_and_resumed(
    fake: FakeDiscord, channel: DiscordChannel, inbox: RecordingInbox
) -> None:
    fake.zombie()
    await fake.user_message(fake.general_id, fake.alice, "while zombie", mention=True)
    await inbox.wait_for("while zombie", within=LIVENESS * 8)
    assert fake.resumes == 1 and fake.identifies == 1


async def test_deaf_gateway_is_detected_by_the_missing_echo(
    fake: FakeDiscord, channel: DiscordChannel, inbox: RecordingInbox
) -> None:
    await fake.user_message(fake.general_id, fake.alice, "hello", mention=True)
    inbound = await inbox.wait_for("hello")
    fake.deafen()  # heartbeats still ACKed: discord.py alone would not notice
    await fake.user_message(fake.general_id, fake.alice, "unheard", mention=True)
    await channel.send(reply(inbound, "our post, never echoed"))
    await inbox.wait_for("unheard", within=LIVENESS * 8)
    assert fake.resumes == 1 and fake.identifies == 1


async def test_op7_reconnect_resumes_without_loss(
    fake: FakeDiscord, channel: DiscordChannel, inbox: RecordingInbox
) -> None:
    await fake.request_reconnect()
    await fake.user_message(fake.general_id, fake.alice, "after op 7", mention=True)
    await inbox.wait_for("after op 7")
    await until(lambda: fake.resumes == 1)
    assert fake.identifies == 1


async def test_op9_invalid_session_identifies_afresh(
    fake: FakeDiscord, channel: DiscordChannel, inbox: RecordingInbox
) -> None:
    await fake.invalidate_session()
    await until(lambda: fake.identifies == 2)
    await fake.user_message(fake.general_id, fake.alice, "new session", mention=True)
    await inbox.wait_for("new session")
    assert fake.resumes == 0


async def test_restart_reads_what_was_missed_while_down(fake: FakeDiscord, state: MemoryState) -> None:
    inbox = RecordingInbox()
    ch = DiscordChannel("discord", make_config(fake), ChannelContext(state=state))
    await ch.start(inbox)
    await fake.user_message(fake.general_id, fake.alice, "first life", mention=True)
    await inbox.wait_for("first life")
    await until(lambda: f"last_seen:{fake.general_id}" in state.data)
    await ch.stop()
    await fake.user_message(fake.general_id, fake.alice, "while the hub was down", mention=True)
    inbox2 = RecordingInbox()
    ch2 = DiscordChannel("discord", make_config(fake), ChannelContext(state=state))
    await ch2.start(inbox2)
    try:
        await inbox2.wait_for("while the hub was down")
        assert [i.text for i in inbox2.inbounds] == ["while the hub was down"]
    finally:
        await ch2.stop()


# ---------------------------------------------------------------------- config and start-up


def test_config_errors_name_the_key() -> None:
    with pytest.raises(ConfigError, match=r"channels\.discord\.token"):
        validate_section(DiscordConfig, {"enabled": True}, "channels.discord")
    with pytest.raises(ConfigError, match="liveness_timeout_seconds"):
        validate_section(DiscordConfig, {"token": "x", "liveness_timeout_seconds": 0}, "channels.discord")


async def test_bad_token_fails_start_clearly(fake: FakeDiscord) -> None:
    ch = DiscordChannel("discord", make_config(fake, token="wrong"), ChannelContext(state=MemoryState()))
    with pytest.raises(ChannelError, match="token was rejected") as info:
        await ch.start(RecordingInbox())
    assert info.value.retryable is False
    assert "wrong" not in str(info.value)


async def test_unreachable_api_fails_start_clearly(fake: FakeDiscord, closed_port: int) -> None:
    config = make_config(fake, api_base=f"http://127.0.0.1:{closed_port}/api/v10")
    ch = DiscordChannel("discord", config, ChannelContext(state=MemoryState()))
    with pytest.raises(ChannelError, match="discord login: ClientConnectorError") as info:
        await ch.start(RecordingInbox())
    assert info.value.retryable is True


async def test_start_twice_and_send_before_start(fake: FakeDiscord, channel: DiscordChannel) -> None:
    with pytest.raises(RuntimeError):
        await channel.start(RecordingInbox())
    idle = DiscordChannel("discord", make_config(fake), ChannelContext(state=MemoryState()))
    with pytest.raises(RuntimeError):
        await idle.send(Outbound(conversation=ConversationRef(channel="discord", chat="1"), text="x"))
    await idle.stop()  # stopping a channel that never started is a no-op
