"""A loopback channel for the hub's own tests, installed through the entry point
``autohands.channels: loopback`` (``tests/loopback/site`` on ``PYTHONPATH``)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import ClassVar

import aiohttp
from pydantic import BaseModel, ConfigDict

from hub.channel import Capabilities, ChannelContext, Inbox, Manifest
from hub.errors import ChannelError
from hub.messages import ConversationRef, Delivery, Inbound, Outbound, Sender

log = logging.getLogger(__name__)


class LoopbackConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    enabled: bool = False
    base_url: str
    poll_timeout: float = 1.0


class LoopbackChannel:
    config_model: ClassVar[type[LoopbackConfig]] = LoopbackConfig
    manifest: ClassVar[Manifest] = Manifest(id="loopback", description="Test channel (long-poll + nonce).")
    capabilities = Capabilities(max_length=10_000, dialect="plain")

    def __init__(self, name: str, config: LoopbackConfig, context: ChannelContext) -> None:
        self.name = name
        self.config = config
        self.context = context
        self.problem: str | None = None
        self._http: aiohttp.ClientSession | None = None
        self._poller: asyncio.Task[None] | None = None

    async def start(self, inbox: Inbox) -> None:
        self._http = aiohttp.ClientSession(self.config.base_url)
        self._poller = asyncio.create_task(self._poll(inbox), name="loopback-poll")

    async def stop(self) -> None:
        if self._poller:
            self._poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._poller
        if self._http:
            await self._http.close()

    async def _poll(self, inbox: Inbox) -> None:
        assert self._http is not None
        offset = 0
        while True:
            try:
                async with self._http.get(
                    "/updates", params={"offset": str(offset), "timeout": str(self.config.poll_timeout)}
                ) as r:
                    updates = await r.json()
            except aiohttp.ClientError:
                await asyncio.sleep(0.2)
                continue
            for u in updates:
                await inbox(
                    Inbound(
                        kind="message",
                        conversation=ConversationRef(channel=self.name, chat=u["chat"]),
                        sender=Sender(id=u["user"]),
                        text=u["text"],
                        platform_id=str(u["id"]),
                        reply_to_platform_id=str(u["id"]),
                        direct=True,
                    )
                )
                # Only now, with the inbound committed, may the next poll confirm it.
                offset = u["id"] + 1

    async def send(self, msg: Outbound) -> Delivery:
        if msg.typing or not msg.final:
            return Delivery()
        assert self._http is not None
        try:
            async with self._http.post(
                "/send",
                json={
                    "nonce": msg.id,
                    "chat": msg.conversation.chat,
                    "text": msg.text,
                    "reply_to": msg.reply_to_platform_id,
                },
            ) as r:
                body = await r.json()
        except aiohttp.ClientError as exc:
            raise ChannelError(f"loopback send failed: {exc}") from exc
        return Delivery(platform_ids=(str(body["message_id"]),))
