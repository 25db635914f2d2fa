"""A real ``Hub`` with an in-test channel that records what it is asked to send."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hub.agent import Agent
from hub.app import Hub
from hub.channel import Capabilities, Inbox
from hub.config import Settings
from hub.default_agent import EchoAgent
from hub.messages import ConversationRef, Delivery, Inbound, Outbound, Sender

ALICE = Sender(id="u-alice", name="Alice")
BOB = Sender(id="u-bob", name="Bob")
ADMIN = Sender(id="u-admin", name="Root", is_admin=True)
CONV = ConversationRef(channel="test", chat="c1")
THREAD = ConversationRef(channel="test", chat="c1", thread="t9")


class RecordingChannel:
    """Records every send; ``wait_for`` awaits a condition on ``sent`` (no sleeping)."""

    def __init__(self, name: str = "test") -> None:
        self.name = name
        self.capabilities = Capabilities()
        self.problem: str | None = None
        self.sent: list[Outbound] = []
        self.inbox: Inbox | None = None
        self._changed = asyncio.Event()
        self._ids = itertools.count(1)

    async def start(self, inbox: Inbox) -> None:
        self.inbox = inbox

    async def stop(self) -> None:
        self.inbox = None

    async def send(self, msg: Outbound) -> Delivery:
        if msg.typing or not msg.final:
            return Delivery()  # typing indicators and stream previews are not answers
        self.sent.append(msg)
        self._changed.set()
        return Delivery(platform_ids=(f"m{next(self._ids)}",))

    def texts(self, conv: ConversationRef | None = None) -> list[str]:
        return [o.text for o in self.sent if conv is None or o.conversation == conv]

    async def wait_for(self, pred: Callable[[], bool], within: float = 5.0) -> None:
        async with asyncio.timeout(within):
            while not pred():
                self._changed.clear()
                await self._changed.wait()


def settings(tmp: Path, **scheduler: Any) -> Settings:
    return Settings.model_validate(
        {
            "hub": {"data_dir": str(tmp / "data")},
            "server": {"enabled": False},
            "scheduler": {"min_interval_seconds": 0.1, **scheduler},
        }
    )


def make_hub(tmp: Path, channel: RecordingChannel, *, agent: Agent | None = None, **scheduler: Any) -> Hub:
    return Hub(settings(tmp, **scheduler), agent=agent or EchoAgent(), channels={channel.name: channel})


_seq = itertools.count(1)


async def command(hub: Hub, name: str, args: str = "", *, sender: Sender = ALICE, conv: ConversationRef = CONV) -> None:
    await hub.inbox(
        Inbound(
            kind="command",
            command=name,
            text=args,
            conversation=conv,
            sender=sender,
            platform_id=f"cmd-{next(_seq)}",
        )
    )


async def ask(
    hub: Hub,
    channel: RecordingChannel,
    name: str,
    args: str = "",
    *,
    sender: Sender = ALICE,
    conv: ConversationRef = CONV,
) -> str:
    """Send a command and return the reply text."""
    before = len(channel.sent)
    await command(hub, name, args, sender=sender, conv=conv)
    await channel.wait_for(lambda: len(channel.sent) > before)
    return channel.sent[before].text
