"""A tiny chat platform for crash tests: long-poll updates with offsets, sends with a nonce.

It behaves like the real ones where it matters: updates are confirmed only by a later poll
with a higher offset (Telegram), and a send carrying an already-seen nonce returns the
existing message instead of posting twice (Discord's ``enforce_nonce``).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web


@dataclass
class SentMessage:
    nonce: str
    chat: str
    text: str
    reply_to: str | None
    message_id: int


@dataclass
class LoopbackPlatform:
    updates: list[dict[str, Any]] = field(default_factory=list)
    confirmed: int = 0
    sent: list[SentMessage] = field(default_factory=list)
    send_calls: int = 0
    polls: int = 0
    _by_nonce: dict[str, SentMessage] = field(default_factory=dict)
    _changed: asyncio.Condition = field(default_factory=asyncio.Condition)
    _runner: web.AppRunner | None = None
    base_url: str = ""

    async def __aenter__(self) -> LoopbackPlatform:
        app = web.Application()
        app.router.add_get("/updates", self._get_updates)
        app.router.add_post("/send", self._send)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.base_url = f"http://127.0.0.1:{port}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._runner:
            await self._runner.cleanup()

    async def inject(self, chat: str, text: str, user: str = "u1") -> int:
        update_id = len(self.updates) + 1
        self.updates.append({"id": update_id, "chat": chat, "text": text, "user": user})
        async with self._changed:
            self._changed.notify_all()
        return update_id

    async def wait_for(self, predicate: Any, timeout: float) -> None:
        async with asyncio.timeout(timeout):
            async with self._changed:
                await self._changed.wait_for(predicate)

    def replies_by_update(self) -> dict[str, list[SentMessage]]:
        out: dict[str, list[SentMessage]] = {}
        for m in self.sent:
            if m.reply_to:
                out.setdefault(m.reply_to, []).append(m)
        return out

    async def _get_updates(self, request: web.Request) -> web.Response:
        offset = int(request.query.get("offset", "0"))
        timeout = float(request.query.get("timeout", "0"))
        self.confirmed = max(self.confirmed, offset - 1)
        self.polls += 1
        async with self._changed:
            self._changed.notify_all()
        pending = [u for u in self.updates if u["id"] >= max(offset, self.confirmed + 1)]
        if not pending and timeout:
            try:
                async with asyncio.timeout(timeout):
                    async with self._changed:
                        await self._changed.wait_for(lambda: len(self.updates) >= max(offset, 1))
            except TimeoutError:
                pass
            pending = [u for u in self.updates if u["id"] >= max(offset, self.confirmed + 1)]
        return web.json_response(pending[:100])

    async def _send(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.send_calls += 1
        nonce = body["nonce"]
        existing = self._by_nonce.get(nonce)
        if existing is None:
            existing = SentMessage(
                nonce=nonce,
                chat=body["chat"],
                text=body["text"],
                reply_to=body.get("reply_to"),
                message_id=len(self.sent) + 1,
            )
            self._by_nonce[nonce] = existing
            self.sent.append(existing)
        async with self._changed:
            self._changed.notify_all()
        return web.json_response({"message_id": existing.message_id})
