"""The Slack channel through slack-bolt and slack_sdk, unmodified, against ``tests.fakes.slack``.

Each test runs the adapter's routes on a small local aiohttp server (as the hub's gateway
would), drives it with correctly signed Slack requests and answers through ``channel.send``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web
from pydantic import ValidationError

from channels._slack_parse import BotIdentity, event_inbound, strip_mention
from channels.slack import EVENTS_PATH, SlackChannel, SlackConfig
from hub.channel import ChannelContext, CommandInfo
from hub.errors import ChannelError, ConfigError
from hub.messages import Button, ConversationRef, Inbound, Outbound, Sender
from tests.channels.support import MemoryState
from tests.fakes.slack import FakeSlack

COMMANDS = [CommandInfo(name=n, description=n) for n in ("new", "stop", "status", "remind")]


@dataclass
class RecordingInbox:
    """Records inbounds and dedupes on ``platform_id`` like the store; may be made to block."""

    inbounds: list[Inbound] = field(default_factory=list)
    seen: set[str] = field(default_factory=set)
    calls: int = 0
    gate: asyncio.Event | None = None
    entered: asyncio.Event = field(default_factory=asyncio.Event)
    returned_at: float = 0.0
    _changed: asyncio.Condition = field(default_factory=asyncio.Condition)

    async def __call__(self, inbound: Inbound) -> bool:
        self.calls += 1
        self.entered.set()
        if self.gate is not None:
            await self.gate.wait()
        fresh = inbound.platform_id not in self.seen
        if fresh:
            self.seen.add(inbound.platform_id)
            self.inbounds.append(inbound)
        self.returned_at = time.monotonic()
        async with self._changed:
            self._changed.notify_all()
        return fresh

    async def wait_for(self, n: int, within: float = 5.0) -> list[Inbound]:
        async with asyncio.timeout(within):
            async with self._changed:
                await self._changed.wait_for(lambda: len(self.inbounds) >= n)
        return self.inbounds


@dataclass
class Harness:
    slack: FakeSlack
    channel: SlackChannel
    inbox: RecordingInbox
    url: str

    async def reply(self, inbound: Inbound, text: str, **kwargs: Any) -> Any:
        return await self.channel.send(Outbound(conversation=inbound.conversation, text=text, **kwargs))


async def _serve(context: ChannelContext) -> tuple[web.AppRunner, int]:
    app = web.Application()
    for method, path, handler in context.routes:
        app.router.add_route(method, path, handler)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = int(runner.addresses[0][1])
    return runner, port


def make_config(slack: FakeSlack, **overrides: Any) -> SlackConfig:
    data: dict[str, Any] = {
        "enabled": True,
        "bot_token": slack.bot_token,
        "signing_secret": slack.signing_secret,
        "api_url": slack.api_url,
        "allow_all": True,
    }
    data.update(overrides)
    return SlackConfig.model_validate(data)


@pytest.fixture
async def hub(slack: FakeSlack) -> AsyncIterator[Harness]:
    context = ChannelContext(state=MemoryState(), commands=COMMANDS)
    channel = SlackChannel("slack", make_config(slack), context)
    runner, port = await _serve(context)
    inbox = RecordingInbox()
    await channel.start(inbox)
    try:
        yield Harness(slack=slack, channel=channel, inbox=inbox, url=f"http://127.0.0.1:{port}{EVENTS_PATH}")
    finally:
        await channel.stop()
        await runner.cleanup()


# ---------------------------------------------------------------------- ingress
async def test_start_learns_bot_identity_and_mounts_one_route(hub: Harness) -> None:
    assert hub.slack.calls_of("auth.test")[0].authorized
    assert [(m, p) for m, p, _ in hub.channel._context.routes] == [("POST", "/slack/events")]


async def test_url_verification_is_answered(hub: Harness) -> None:
    resp = await hub.slack.url_verification(hub.url, challenge="abc123")
    assert resp.status == 200
    assert resp.json() == {"challenge": "abc123"}
    assert hub.inbox.calls == 0


async def test_slash_command_acked_fast_and_answered_in_its_channel(hub: Harness) -> None:
    resp = await hub.slack.send_slash_command(hub.url, "what is 2+2?", channel="C42", user="U7")
    assert resp.status == 200
    assert resp.elapsed < 3.0
    assert resp.json() == {"text": "Working on it…", "response_type": "ephemeral"}
    [inbound] = hub.inbox.inbounds
    assert inbound.kind == "message" and inbound.text == "what is 2+2?"
    # The channel and the user: not a Slack thread, so the answer goes to the channel itself.
    assert inbound.conversation == ConversationRef(channel="slack", chat="C42", thread="user:U7")
    assert inbound.sender.id == "U7" and inbound.platform_id.startswith("cmd:trig.")
    await hub.reply(inbound, "It is **4**.")
    [post] = hub.slack.posts
    assert post.channel == "C42" and post.thread_ts is None
    assert post.text == "It is *4*."
    assert post.unfurl_links is False and post.unfurl_media is False


async def test_two_users_slash_commands_in_one_channel_are_two_conversations(hub: Harness) -> None:
    await hub.slack.send_slash_command(hub.url, "mine", channel="C42", user="U7")
    await hub.slack.send_slash_command(hub.url, "yours", channel="C42", user="U8")
    first, second = hub.inbox.inbounds
    assert first.conversation.key != second.conversation.key
    assert first.conversation.chat == second.conversation.chat == "C42"
    await hub.reply(first, "only for U7")
    await hub.channel.send(Outbound(conversation=first.conversation, text="psst", ephemeral_to="U7"))
    assert [(p.channel, p.thread_ts) for p in hub.slack.posts] == [("C42", None)]
    assert "thread_ts" not in hub.slack.ephemerals[0]


async def test_button_under_a_slash_command_answer_comes_back_to_its_conversation(hub: Harness) -> None:
    await hub.slack.send_slash_command(hub.url, "delete it", channel="C3", user="U7")
    [asked] = hub.inbox.inbounds
    await hub.reply(asked, "Sure?", buttons=(Button(id="appr-2:yes", label="Yes"),))
    [post] = hub.slack.posts
    assert post.thread_ts is None and post.blocks is not None
    block_id = post.blocks[-1]["block_id"]
    await hub.slack.click_button(hub.url, "appr-2:yes", user="U7", channel="C3", message_ts=post.ts, block_id=block_id)
    click = (await hub.inbox.wait_for(2))[1]
    assert click.conversation == asked.conversation  # so the waiting run sees the answer
    # A mention's buttons live in its thread, which already names the conversation.
    await hub.slack.send_event(hub.url, hub.slack.mention_event("and this?", channel="C3", user="U7"))
    mention = (await hub.inbox.wait_for(3))[2]
    await hub.reply(mention, "Sure?", buttons=(Button(id="appr-3:yes", label="Yes"),))
    blocks = hub.slack.posts[-1].blocks
    assert blocks is not None and "block_id" not in blocks[-1]


async def test_slash_command_ack_can_be_in_channel(slack: FakeSlack) -> None:
    context = ChannelContext(state=MemoryState(), commands=COMMANDS)
    channel = SlackChannel("slack", make_config(slack, ack_visibility="in_channel", ack_text="On it"), context)
    runner, port = await _serve(context)
    await channel.start(RecordingInbox())
    try:
        resp = await slack.send_slash_command(f"http://127.0.0.1:{port}{EVENTS_PATH}", "hi")
        assert resp.json() == {"text": "On it", "response_type": "in_channel"}
    finally:
        await channel.stop()
        await runner.cleanup()


@pytest.mark.parametrize(
    ("text", "command", "rest"),
    [("status", "status", ""), ("remind in 10m stretch", "remind", "in 10m stretch"), ("/new", "new", "")],
)
async def test_subcommand_becomes_a_command_inbound(hub: Harness, text: str, command: str, rest: str) -> None:
    resp = await hub.slack.send_slash_command(hub.url, text)
    assert resp.status == 200
    [inbound] = hub.inbox.inbounds
    assert (inbound.kind, inbound.command, inbound.text) == ("command", command, rest)


async def test_empty_command_shows_usage(hub: Harness) -> None:
    resp = await hub.slack.send_slash_command(hub.url, "  ")
    assert resp.status == 200 and "Usage: `/ask <question>`" in resp.json()["text"]
    assert hub.inbox.calls == 0


async def test_unknown_first_word_stays_a_message(hub: Harness) -> None:
    await hub.slack.send_slash_command(hub.url, "newest release notes please")
    [inbound] = hub.inbox.inbounds
    assert inbound.kind == "message" and inbound.command is None


async def test_mention_answered_in_its_thread(hub: Harness) -> None:
    event = hub.slack.mention_event("summarise this", channel="C9", user="U3")
    resp = await hub.slack.send_event(hub.url, event)
    assert resp.status == 200
    [inbound] = hub.inbox.inbounds
    assert inbound.text == "summarise this" and inbound.mentioned and not inbound.direct
    assert inbound.conversation == ConversationRef(channel="slack", chat="C9", thread=event["ts"])
    await hub.reply(inbound, "Here you go")
    [post] = hub.slack.posts
    assert (post.channel, post.thread_ts, post.text) == ("C9", event["ts"], "Here you go")


async def test_mention_inside_a_thread_keeps_that_thread(hub: Harness) -> None:
    event = hub.slack.mention_event("and this?", channel="C9", thread_ts="1700000000.000100")
    await hub.slack.send_event(hub.url, event)
    [inbound] = hub.inbox.inbounds
    assert inbound.conversation.thread == "1700000000.000100"


async def test_dm_answered_directly(hub: Harness) -> None:
    await hub.slack.send_event(hub.url, hub.slack.message_event("hello bot", channel="D5", user="U2"))
    [inbound] = hub.inbox.inbounds
    assert inbound.direct and inbound.text == "hello bot"
    assert inbound.conversation == ConversationRef(channel="slack", chat="D5")
    await hub.reply(inbound, "hello human")
    [post] = hub.slack.posts
    assert (post.channel, post.thread_ts) == ("D5", None)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"channel": "C1", "channel_type": "channel"},  # un-mentioned channel chatter
        {"user": "UBOT", "bot_id": "BBOT"},  # the bot's own message
        {"user": None, "subtype": "bot_message", "bot_id": "BOTHER"},  # another bot
        {"subtype": "message_changed"},  # an edit notification
    ],
    ids=["unmentioned", "own", "other-bot", "changed"],
)
async def test_messages_not_for_the_hub_are_acked_and_ignored(hub: Harness, kwargs: dict[str, Any]) -> None:
    resp = await hub.slack.send_event(hub.url, hub.slack.message_event("text", **kwargs))
    assert resp.status == 200
    assert hub.inbox.calls == 0
    assert hub.slack.posts == []


async def test_other_event_types_are_acked(hub: Harness) -> None:
    event = {"type": "reaction_added", "user": "U1", "reaction": "tada", "event_ts": hub.slack.next_ts()}
    resp = await hub.slack.send_event(hub.url, event)
    assert resp.status == 200 and hub.inbox.calls == 0


async def _started(slack: FakeSlack, **overrides: Any) -> tuple[SlackChannel, RecordingInbox, str, web.AppRunner]:
    context = ChannelContext(state=MemoryState(), commands=COMMANDS)
    channel = SlackChannel("slack", make_config(slack, **overrides), context)
    runner, port = await _serve(context)
    inbox = RecordingInbox()
    await channel.start(inbox)
    return channel, inbox, f"http://127.0.0.1:{port}{EVENTS_PATH}", runner


async def test_access_refuses_strangers_in_dms_and_ignores_them_in_channels(slack: FakeSlack) -> None:
    channel, inbox, url, runner = await _started(slack, allow_all=False, allow_users=["U1"], admins=["UADM"])
    try:
        await slack.send_event(url, slack.message_event("let me in", channel="D9", user="U666"))
        await slack.send_event(url, slack.message_event("again", channel="D9", user="U666"))
        assert [p.text for p in slack.posts] == [channel._access.refusal_for(Sender(id="U666"))]
        assert "U666" in slack.posts[0].text  # the refusal tells the stranger their id
        await slack.send_event(url, slack.mention_event("hey", channel="C1", user="U666"))
        resp = await slack.send_slash_command(url, "hey", user="U666")
        assert "U666" in resp.json()["text"]
        assert inbox.calls == 0 and len(slack.posts) == 1

        await slack.send_event(url, slack.mention_event("hi", channel="C1", user="U1"))
        await slack.send_event(url, slack.mention_event("hi", channel="C1", user="UADM"))
        assert [(i.sender.id, i.sender.is_admin) for i in inbox.inbounds] == [("U1", False), ("UADM", True)]
    finally:
        await channel.stop()
        await runner.cleanup()


async def test_allowed_name_from_another_team_is_refused(slack: FakeSlack) -> None:
    # user_name is deprecated and not unique across workspaces: Slack Connect brings in people
    # from other teams, and any of them may be called "alice".
    channel, inbox, url, runner = await _started(slack, allow_all=False, allow_users=["alice", "U1"], admins=["boss"])
    try:
        resp = await slack.send_slash_command(url, "hello", user="UOTHER", user_name="alice", team_id="T9999")
        assert resp.status == 200 and "UOTHER" in resp.json()["text"]  # refused, told their id
        await slack.send_slash_command(url, "hello", user="U1", user_name="alice")
        await slack.send_slash_command(url, "status", user="U1", user_name="boss")
        assert [(i.sender.id, i.sender.is_admin) for i in inbox.inbounds] == [("U1", False), ("U1", False)]
    finally:
        await channel.stop()
        await runner.cleanup()


def test_name_like_allow_entries_warn_once_at_start(slack: FakeSlack, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    config = make_config(slack, allow_all=False, allow_users=["@alice", "U07QWERTY", "@W0ORG1"], admins=["bob"])
    SlackChannel("slack", config, ChannelContext(state=MemoryState()))
    [line] = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert "@alice, bob" in line.getMessage() and "U07QWERTY" not in line.getMessage()
    assert "Copy member ID" in line.getMessage()
    caplog.clear()
    SlackChannel("slack", make_config(slack, allow_users=["U1"], admins=["UADM"]), ChannelContext(state=MemoryState()))
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


async def test_group_policy_all_answers_channel_messages_once(slack: FakeSlack) -> None:
    channel, inbox, url, runner = await _started(slack, group_policy="all")
    try:
        plain = slack.message_event("anyone?", channel="C7", channel_type="channel")
        await slack.send_event(url, plain)
        # A mention arrives twice (app_mention + message.channels): answered once.
        mention = slack.mention_event("you there?", channel="C7")
        await slack.send_event(url, mention)
        await slack.send_event(url, {**mention, "type": "message", "channel_type": "channel"})
        assert [i.text for i in inbox.inbounds] == ["anyone?", "you there?"]
        assert inbox.inbounds[0].conversation.thread == plain["ts"]
    finally:
        await channel.stop()
        await runner.cleanup()


async def test_retried_event_is_answered_once(hub: Harness) -> None:
    event = hub.slack.mention_event("once please")
    envelope = hub.slack.event_envelope(event, event_id="Ev123")
    first = await hub.slack.send_envelope(hub.url, envelope)
    retry = await hub.slack.send_envelope(hub.url, envelope, retry_num=1, retry_reason="http_timeout")
    assert (first.status, retry.status) == (200, 200)
    assert hub.inbox.calls == 2 and len(hub.inbox.inbounds) == 1
    assert hub.inbox.inbounds[0].platform_id == "Ev123"


@pytest.mark.parametrize("attack", ["bad_signature", "stale"])
async def test_forged_or_stale_request_gets_401(hub: Harness, attack: str) -> None:
    sign: dict[str, Any] = (
        {"bad_signature": True} if attack == "bad_signature" else {"timestamp": int(time.time()) - 6 * 60}
    )
    resp = await hub.slack.send_event(hub.url, hub.slack.mention_event("hi"), **sign)
    assert resp.status == 401
    resp = await hub.slack.send_slash_command(hub.url, "hi", **sign)
    assert resp.status == 401
    resp = await hub.slack.click_button(hub.url, "approve", **sign)
    assert resp.status == 401
    assert hub.inbox.calls == 0 and hub.slack.posts == []
    assert len(hub.slack.calls) == 1  # only start()'s auth.test


async def test_ack_waits_for_the_inbox(hub: Harness) -> None:
    hub.inbox.gate = asyncio.Event()
    request = asyncio.create_task(hub.slack.send_event(hub.url, hub.slack.mention_event("slow store")))
    await asyncio.wait_for(hub.inbox.entered.wait(), 5)
    await asyncio.sleep(0.2)
    assert not request.done()  # no HTTP answer while the inbound is not committed
    hub.inbox.gate.set()
    resp = await asyncio.wait_for(request, 5)
    assert resp.status == 200 and len(hub.inbox.inbounds) == 1


async def test_failing_inbox_is_not_acked(hub: Harness) -> None:
    async def broken(inbound: Inbound) -> bool:
        raise RuntimeError("database is locked")

    hub.channel._inbox = broken
    resp = await hub.slack.send_event(hub.url, hub.slack.mention_event("lost?"))
    assert resp.status >= 500  # so Slack retries it


async def test_approval_button_carries_the_clicking_user(hub: Harness) -> None:
    await hub.slack.send_event(hub.url, hub.slack.mention_event("delete the files", channel="C3", user="U1"))
    [asked] = hub.inbox.inbounds
    buttons = (
        Button(id="appr-1:yes", label="Approve", style="primary"),
        Button(id="appr-1:no", label="Deny"),
    )
    await hub.reply(asked, "Run `rm`?", buttons=buttons)
    [post] = hub.slack.posts
    assert post.thread_ts == asked.conversation.thread
    assert post.blocks is not None
    actions = post.blocks[-1]
    assert actions["type"] == "actions"
    assert [e["action_id"] for e in actions["elements"]] == ["appr-1:yes", "appr-1:no"]
    assert post.blocks[0]["type"] == "section"

    resp = await hub.slack.click_button(hub.url, "appr-1:yes", user="U99", channel="C3", message_ts=post.ts)
    assert resp.status == 200
    click = (await hub.inbox.wait_for(2))[1]
    assert (click.kind, click.button, click.sender.id) == ("button", "appr-1:yes", "U99")
    assert click.conversation.chat == "C3" and click.platform_id.startswith("act:")


async def test_long_answer_is_split(hub: Harness) -> None:
    await hub.slack.send_event(hub.url, hub.slack.message_event("write a lot", channel="D1"))
    [inbound] = hub.inbox.inbounds
    paragraph = "Lorem ipsum dolor sit amet, consectetur adipiscing elit. " * 20
    text = "\n\n".join([paragraph] * 8)  # ≈ 9,000 chars
    delivery = await hub.reply(inbound, text)
    assert len(hub.slack.posts) >= 3
    assert all(len(p.text) <= SlackChannel.capabilities.max_length for p in hub.slack.posts)
    assert len(delivery.platform_ids) == len(hub.slack.posts)
    assert all(p.channel == "D1" for p in hub.slack.posts)


async def test_streamed_answer_edits_one_message(hub: Harness) -> None:
    await hub.slack.send_event(hub.url, hub.slack.mention_event("stream it", channel="C5"))
    [inbound] = hub.inbox.inbounds
    conv = inbound.conversation
    await hub.channel.send(Outbound(conversation=conv, text="Thinking", final=False, stream="s1"))
    await hub.channel.send(Outbound(conversation=conv, text="Thinking harder", final=False, stream="s1"))
    await hub.channel.send(Outbound(conversation=conv, text="Done: 42", final=True, stream="s1"))
    assert len(hub.slack.posts) == 1
    assert hub.slack.posts[0].text == "Done: 42"
    assert hub.slack.updates and hub.slack.updates[-1][2] == "Done: 42"
    assert all(c.body.get("thread_ts") == conv.thread for c in hub.slack.calls_of("chat.postMessage"))


async def test_rate_limit_is_survived_without_doubles(hub: Harness) -> None:
    await hub.slack.send_event(hub.url, hub.slack.message_event("hi", channel="D8"))
    [inbound] = hub.inbox.inbounds
    hub.slack.fail_next("chat.postMessage", "ratelimited", status=429, retry_after=1)
    start = time.monotonic()
    delivery = await hub.reply(inbound, "first try")  # Retry-After is waited out, then resent
    assert time.monotonic() - start >= 0.9
    assert len(hub.slack.calls_of("chat.postMessage")) == 2
    assert [p.text for p in hub.slack.posts] == ["first try"]
    assert delivery.platform_ids == (hub.slack.posts[0].ts,)


async def test_long_retry_after_is_raised_for_the_outbox(hub: Harness) -> None:
    conv = ConversationRef(channel="slack", chat="D8")
    hub.slack.fail_next("chat.postMessage", "ratelimited", status=429, retry_after=120)
    with pytest.raises(ChannelError) as info:
        await hub.channel.send(Outbound(conversation=conv, text="later"))
    assert info.value.retryable and info.value.retry_after == 120.0
    assert hub.slack.posts == []


async def test_formatting_rejection_is_resent_plain(hub: Harness) -> None:
    await hub.slack.send_event(hub.url, hub.slack.message_event("hi", channel="D8"))
    [inbound] = hub.inbox.inbounds
    hub.slack.fail_next("chat.postMessage", "invalid_blocks")
    await hub.reply(inbound, "pick *one*", buttons=(Button(id="b1", label="One"),))
    [refused, resent] = hub.slack.calls_of("chat.postMessage")
    assert refused.body["mrkdwn"] is True and resent.body["mrkdwn"] is False
    [post] = hub.slack.posts
    assert post.blocks is not None and post.blocks[0]["text"]["type"] == "plain_text"


async def test_permanent_error_is_not_retryable(hub: Harness) -> None:
    hub.slack.fail_next("chat.postMessage", "not_in_channel")
    conv = ConversationRef(channel="slack", chat="C404")
    with pytest.raises(ChannelError) as info:
        await hub.channel.send(Outbound(conversation=conv, text="hello"))
    assert not info.value.retryable and info.value.status == "not_in_channel"


async def test_ephemeral_outbound_uses_post_ephemeral(hub: Harness) -> None:
    conv = ConversationRef(channel="slack", chat="C1")
    await hub.channel.send(Outbound(conversation=conv, text="only you", ephemeral_to="U1"))
    assert hub.slack.ephemerals[0]["user"] == "U1" and hub.slack.posts == []


async def test_secrets_never_reach_the_logs(slack: FakeSlack, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    context = ChannelContext(state=MemoryState(), commands=COMMANDS)
    channel = SlackChannel("slack", make_config(slack), context)
    runner, port = await _serve(context)
    inbox = RecordingInbox()
    await channel.start(inbox)
    try:
        url = f"http://127.0.0.1:{port}{EVENTS_PATH}"
        await slack.send_event(url, slack.mention_event("hi"))
        await slack.send_event(url, slack.mention_event("forged"), bad_signature=True)
        await slack.send_slash_command(url, "status")
        await channel.send(Outbound(conversation=inbox.inbounds[0].conversation, text="hello"))
    finally:
        await channel.stop()
        await runner.cleanup()
    assert slack.bot_token not in caplog.text
    assert slack.signing_secret not in caplog.text
    assert "forged" not in caplog.text  # a refused body is not logged


# ---------------------------------------------------------------------- config and lifecycle
def test_config_requires_the_secret_of_its_mode() -> None:
    with pytest.raises(ValidationError, match="signing_secret"):
        SlackConfig.model_validate({"bot_token": "xoxb-1"})
    with pytest.raises(ValidationError, match="app_token"):
        SlackConfig.model_validate({"bot_token": "xoxb-1", "mode": "socket"})
    base = {"bot_token": "xoxb-1", "mode": "socket", "app_token": "xapp-1"}
    ok = SlackConfig.model_validate(base)
    assert ok.api_url == "https://slack.com/api/" and ok.command == "/ask"
    assert "xoxb-1" not in repr(ok)
    assert SlackConfig.model_validate({**base, "api_url": "http://x/api"}).api_url == "http://x/api/"
    with pytest.raises(ValidationError, match="api_url"):
        SlackConfig.model_validate({**base, "api_url": "slack.com"})
    with pytest.raises(ValidationError, match="extra"):
        SlackConfig.model_validate({**base, "tokne": "typo"})


async def test_bad_token_is_a_config_error(slack: FakeSlack) -> None:
    context = ChannelContext(state=MemoryState())
    channel = SlackChannel("slack", make_config(slack, bot_token="xoxb-wrong"), context)
    with pytest.raises(ConfigError, match="bot_token"):
        await channel.start(RecordingInbox())


async def test_socket_mode_receives_and_acks_after_commit(slack: FakeSlack) -> None:
    context = ChannelContext(state=MemoryState(), commands=COMMANDS)
    config = make_config(slack, mode="socket", app_token=slack.app_token, signing_secret=None)
    channel = SlackChannel("slack", config, context)
    assert context.routes == []  # no HTTP route in socket mode
    inbox = RecordingInbox()
    await channel.start(inbox)
    try:
        envelope = slack.event_envelope(slack.mention_event("over the socket", channel="C2"), event_id="EvS1")
        ack = await slack.send_socket("events_api", envelope)
        assert ack["envelope_id"] and [i.platform_id for i in inbox.inbounds] == ["EvS1"]
        await slack.send_socket("events_api", envelope, retry_attempt=1)
        assert len(inbox.inbounds) == 1  # a redelivered envelope is acked, not re-run

        ack = await slack.send_socket("slash_commands", slack.slash_form("status", channel="C2"))
        assert ack["payload"]["text"] == "Working on it…"
        assert (inbox.inbounds[-1].kind, inbox.inbounds[-1].command) == ("command", "status")

        await channel.send(Outbound(conversation=inbox.inbounds[0].conversation, text="socket reply"))
        assert slack.posts[-1].thread_ts == inbox.inbounds[0].conversation.thread
    finally:
        await channel.stop()
    await slack.wait_until(lambda: not slack.sockets)


async def test_socket_mode_bad_app_token_is_a_config_error(slack: FakeSlack) -> None:
    config = make_config(slack, mode="socket", app_token="xapp-wrong", signing_secret=None)
    channel = SlackChannel("slack", config, ChannelContext(state=MemoryState()))
    with pytest.raises(ConfigError, match="app_token"):
        await channel.start(RecordingInbox())


async def test_start_twice_is_refused(hub: Harness) -> None:
    with pytest.raises(RuntimeError, match="already started"):
        await hub.channel.start(hub.inbox)


# ---------------------------------------------------------------------- pure conversions
def test_strip_mention_handles_labels() -> None:
    assert strip_mention("<@UBOT|autohands> hi <@UBOT>", "UBOT") == "hi"


def test_mention_from_another_bot_is_ignored() -> None:
    bot = BotIdentity(user_id="UBOT")
    event = {
        "type": "app_mention",
        "user": "U2",
        "bot_id": "B2",
        "text": "<@UBOT> x",
        "ts": "1.1",
        "channel": "C",
    }
    assert event_inbound("slack", event, event_id="E", bot=bot, commands=()) is None
