"""A channel whose platform cannot be reached at start-up (network not up yet at boot, DNS, a
5xx) must not take the hub down: it is retried in the background with back-off while the other
channels serve, its replies wait in the outbox, and ``/healthz`` says why it is not started. A
refusal (bad token) still ends the start with its one line."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

from hub.app import Hub
from hub.backoff import Backoff
from hub.channel import Inbox
from hub.errors import ChannelError, ConfigError
from hub.messages import ConversationRef, Outbound
from hub.store import Store
from tests.hub.conftest import RecordingChannel

FAST = Backoff(first=0.01, cap=0.05)


class UnreachableChannel(RecordingChannel):
    """Fails its start with ``errors`` (one per attempt) until ``reachable`` is set."""

    def __init__(self, name: str = "flaky", *, errors: list[Exception] | None = None) -> None:
        super().__init__(name)
        self.reachable = asyncio.Event()
        self.errors = errors
        self.attempts = 0
        self.became_started = asyncio.Event()
        self.hang = False
        self.hung = asyncio.Event()
        self.third_attempt = asyncio.Event()

    async def start(self, inbox: Inbox) -> None:
        self.attempts += 1
        if self.attempts == 3:
            self.third_attempt.set()
        if self.hang and self.attempts > 1:
            self.hung.set()
            await asyncio.Event().wait()  # connecting forever: only cancellation ends this
        if not self.reachable.is_set():
            raise (
                self.errors.pop(0)
                if self.errors
                else ChannelError("flaky getMe: ConnectError: All connection attempts failed", retryable=True)
            )
        await super().start(inbox)
        self.became_started.set()

    async def send(self, msg: Outbound) -> Any:
        assert self.started, "sent before the channel started"
        return await super().send(msg)


def hub_with(settings: Any, *channels: RecordingChannel) -> Hub:
    return Hub(settings, channels={c.name: c for c in channels}, start_retry=FAST)


async def test_unreachable_channel_is_retried_while_the_rest_serves(hub_settings: Any, caplog: Any) -> None:
    settings = hub_settings()
    async with Store(settings.store_url) as store:  # a reply a crash left unsent to the flaky channel
        await store.record_outbound(Outbound(conversation=ConversationRef(channel="flaky", chat="c1"), text="left"))
    flaky, rec = UnreachableChannel(), RecordingChannel()
    caplog.set_level(logging.WARNING, logger="hub.app")
    async with asyncio.timeout(10), hub_with(settings, flaky, rec) as hub:
        health = hub.health()
        assert health["ok"] is False
        assert health["channels"] == {"flaky": False, "rec": True}
        assert "ConnectError" in health["errors"]["flaky"]  # type: ignore[index]
        assert any(
            "channel flaky could not start" in r.getMessage() and "retrying" in r.getMessage() for r in caplog.records
        )

        await rec.say("hello")  # the other channel answers during the outage
        await rec.wait_sent(1)
        await flaky.third_attempt.wait()  # several back-off rounds pass; nothing is sent or failed
        assert flaky.sent == [] and hub.outbox is not None and hub.outbox.failed == 0

        flaky.reachable.set()
        await flaky.became_started.wait()
        await flaky.wait_sent(1)
        assert flaky.texts() == ["left"]
        assert hub.health() == {"ok": True, "channels": {"flaky": True, "rec": True}}


async def test_a_refusal_at_start_still_ends_the_start(hub_settings: Any) -> None:
    refused = UnreachableChannel(errors=[ChannelError("flaky: the bot token was rejected", retryable=False)])
    with pytest.raises(ChannelError, match="token was rejected"):
        async with asyncio.timeout(10), hub_with(hub_settings(), refused):
            pass
    assert refused.attempts == 1


async def test_a_refusal_found_on_a_retry_leaves_that_channel_off(hub_settings: Any, caplog: Any) -> None:
    flaky = UnreachableChannel(
        errors=[
            ChannelError("flaky getMe: timed out", retryable=True),
            ConfigError("channels.flaky.bot_token: the platform refused the token"),
        ]
    )
    rec = RecordingChannel()
    caplog.set_level(logging.ERROR, logger="hub.app")
    async with asyncio.timeout(10), hub_with(hub_settings(), flaky, rec) as hub:
        while hub._start_retries:  # noqa: ASYNC110 - the retry task ends itself on the refusal
            await asyncio.sleep(0.01)
        assert flaky.attempts == 2
        health = hub.health()
        assert health["ok"] is False
        assert health["errors"] == {"flaky": "channels.flaky.bot_token: the platform refused the token"}
        await rec.say("still here")
        await rec.wait_sent(1)
    [line] = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert "stays off until the hub is restarted" in line.getMessage() and line.exc_info is None


async def test_an_adapter_bug_on_a_retry_is_logged_with_its_traceback_once(hub_settings: Any, caplog: Any) -> None:
    flaky = UnreachableChannel(errors=[ChannelError("flaky: timed out", retryable=True), RuntimeError("boom")])
    caplog.set_level(logging.ERROR, logger="hub.app")
    async with asyncio.timeout(10), hub_with(hub_settings(), flaky) as hub:
        while hub._start_retries:  # noqa: ASYNC110 - the retry task ends itself on the bug
            await asyncio.sleep(0.01)
        assert hub.health()["errors"] == {"flaky": "RuntimeError: boom"}
    [line] = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert line.exc_info is not None and flaky.attempts == 2


async def test_stopping_during_the_retries_is_prompt_and_keeps_replies_pending(hub_settings: Any) -> None:
    settings = hub_settings()
    flaky = UnreachableChannel()
    flaky.hang = True  # the second attempt never returns: stopping must cancel it
    async with asyncio.timeout(5):  # the outbox's 10 s grace must not apply to a gated lane
        async with hub_with(settings, flaky) as hub:
            assert hub.sessions is not None
            await hub.sessions.send_during_run(
                Outbound(conversation=ConversationRef(channel="flaky", chat="c9"), text="for later")
            )
            await flaky.hung.wait()
    assert not flaky.started and flaky.sent == []
    async with Store(settings.store_url) as store:
        assert [o.text for o in await store.pending_outbound()] == ["for later"]
