"""One open WebSocket: its principal and a bounded queue of frames that one task writes."""

from __future__ import annotations

import asyncio
import contextlib
import json

from aiohttp import WSCloseCode, web

from hub.auth import Principal

from ._protocol import Frame

__all__ = ["Client"]


class Client:
    """Frames are queued without waiting (the conversation's lock is held while they are), in
    order, and written by the client's own task; a client too slow to take them is closed
    (1013: try again later) and resumes when it reconnects, so nothing waits on it."""

    def __init__(self, ws: web.WebSocketResponse, who: Principal, *, limit: int) -> None:
        self.ws = ws
        self.who = who
        self._queue: asyncio.Queue[str | None] = asyncio.Queue(limit)
        self._writer = asyncio.create_task(self._write(), name=f"web-socket-{id(self):x}")

    def put(self, frame: Frame, *, droppable: bool = False) -> None:
        """Queue ``frame``; ``droppable`` ones (partial text, typing) are skipped when full."""
        if self.ws.closed:
            return
        try:
            self._queue.put_nowait(json.dumps(frame, separators=(",", ":"), ensure_ascii=False))
        except asyncio.QueueFull:
            if not droppable:
                self._writer.cancel()
                asyncio.get_running_loop().create_task(self.ws.close(code=WSCloseCode.TRY_AGAIN_LATER))

    async def _write(self) -> None:
        while (text := await self._queue.get()) is not None:
            try:
                await self.ws.send_str(text)
            except (ConnectionError, RuntimeError):  # closed under us: the reader ends too
                return

    async def close(self, code: int, message: str) -> None:
        """Write what is queued, then close (the hub stopping, or the peer went away)."""
        with contextlib.suppress(asyncio.QueueFull):
            self._queue.put_nowait(None)
        with contextlib.suppress(asyncio.CancelledError, TimeoutError):
            await asyncio.wait_for(asyncio.shield(self._writer), timeout=2.0)
        self._writer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._writer
        await self.ws.close(code=code, message=message.encode())
