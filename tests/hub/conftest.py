"""Helpers for hub tests: a recording channel, scriptable agents, a Hub on a temp database."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from hub.agent import RunContext
from hub.app import Hub
from hub.channel import Capabilities, Inbox
from hub.config import load_settings
from hub.errors import ChannelError
from hub.messages import ConversationRef, Delivery, Inbound, Outbound, Sender


class RecordingChannel:
    """An in-process channel: tests push inbounds through the hub's inbox and read sends."""

    capabilities = Capabilities(max_length=10_000, dialect="plain", buttons=True)
    problem: str | None = None

    def __init__(self, name: str = "rec") -> None:
        self.name = name
        self.inbox: Inbox | None = None
        self.sent: list[Outbound] = []
        self.partials: list[Outbound] = []
        self.fail_next: list[ChannelError] = []
        self._changed = asyncio.Condition()
        self.started = False

    async def start(self, inbox: Inbox) -> None:
        self.inbox = inbox
        self.started = True

    async def stop(self) -> None:
        self.started = False

    async def send(self, msg: Outbound) -> Delivery:
        if self.fail_next:
            raise self.fail_next.pop(0)
        if msg.typing:
            return Delivery()
        (self.sent if msg.final else self.partials).append(msg)
        async with self._changed:
            self._changed.notify_all()
        return Delivery(platform_ids=(f"p{len(self.sent)}",))

    async def say(
        self,
        text: str,
        *,
        chat: str = "c1",
        user: str = "u1",
        pid: str | None = None,
        kind: str = "message",
        command: str | None = None,
        button: str | None = None,
        admin: bool = False,
    ) -> bool:
        assert self.inbox is not None
        self._n = getattr(self, "_n", 0) + 1
        return await self.inbox(
            Inbound(
                kind=kind,  # type: ignore[arg-type]
                conversation=ConversationRef(channel=self.name, chat=chat),
                sender=Sender(id=user, is_admin=admin),
                text=text,
                command=command,
                button=button,
                platform_id=pid or f"{self.name}-{self._n}",
                reply_to_platform_id=pid or f"{self.name}-{self._n}",
                direct=True,
            )
        )

    async def wait_sent(self, n: int, timeout: float = 5.0) -> list[Outbound]:
        async with asyncio.timeout(timeout):
            async with self._changed:
                await self._changed.wait_for(lambda: len(self.sent) >= n)
        return self.sent

    def texts(self, chat: str | None = None) -> list[str]:
        return [m.text for m in self.sent if chat is None or m.conversation.chat == chat]


class FuncAgent:
    """An agent from an async generator function ``fn(ctx)``."""

    def __init__(self, fn: Callable[[RunContext], AsyncIterator[Outbound]]) -> None:
        self.fn = fn

    def run(self, ctx: RunContext) -> AsyncIterator[Outbound]:
        return self.fn(ctx)


def reply(ctx: RunContext, text: str, **kw: Any) -> Outbound:
    return Outbound(
        conversation=ctx.conversation,
        text=text,
        reply_to_platform_id=ctx.inbound.reply_to_platform_id,
        inbound_id=ctx.inbound.id,
        **kw,
    )


@pytest.fixture
def hub_settings(tmp_path: Path) -> Any:
    def make(**over: Any) -> Any:
        base = {"hub": {"data_dir": str(tmp_path / "data")}, "server": {"enabled": False}, "agent": {"runtime": "none"}}
        base["channels"] = {"web": {"enabled": False}, "api": {"enabled": False}}  # on by default, not tested here
        for k, v in over.items():
            base[k] = {**base.get(k, {}), **v}
        return load_settings(environ={}, overrides=base)

    return make


@pytest.fixture
def make_hub(hub_settings: Any) -> Callable[..., Hub]:
    def make(agent_obj: Any = None, channel: RecordingChannel | None = None, **over: Any) -> Hub:
        ch = channel or RecordingChannel()
        return Hub(hub_settings(**over), agent=agent_obj, channels={ch.name: ch})

    return make
