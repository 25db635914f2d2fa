"""``Idempotency-Key``: a retried request (same key, same body) gets the stored answer.

A key is the caller's own (namespaced by ``Principal.id``) and lasts ``WINDOW_SECONDS``, the
window payment APIs use. Its record — the body's hash, when it was first used, the inbound's
platform id and, once the run ended, the answer — lives in the channel's durable key/value
state, so a retry after a hub restart is answered from it too. While the first request is still
running, a retry waits for the same answer rather than starting a second run.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from dataclasses import dataclass, field

import orjson

from hub.channel import KeyValueState

WINDOW_SECONDS = 24 * 3600


def body_hash(raw: object) -> str:
    """The hash of a request body as JSON means it (key order and spacing do not count)."""
    return hashlib.sha256(orjson.dumps(raw, option=orjson.OPT_SORT_KEYS)).hexdigest()


@dataclass(slots=True)
class Claim:
    """What ``IdempotencyKeys.claim`` found for a key."""

    platform_id: str
    answer: dict[str, object] | None = None
    """The stored answer of an earlier run (a completion object)."""
    running: asyncio.Future[dict[str, object]] | None = None
    """The same request still running here: await its answer."""
    conflict: bool = False
    """The key was used with a different body."""
    stale: bool = False
    """The key's run did not finish here (the hub stopped, or the request timed out)."""


@dataclass(slots=True)
class IdempotencyKeys:
    state: KeyValueState
    _running: dict[str, tuple[str, asyncio.Future[dict[str, object]]]] = field(default_factory=dict)

    async def claim(self, who: str, key: str, digest: str, *, now: float | None = None) -> Claim:
        now = time.time() if now is None else now
        name = f"idem:{who}:{key}"
        running = self._running.get(name)
        if running is not None:
            return Claim("", running=running[1]) if running[0] == digest else Claim("", conflict=True)
        # Claimed before the first await, so a concurrent retry finds it running.
        future: asyncio.Future[dict[str, object]] = asyncio.get_running_loop().create_future()
        self._running[name] = (digest, future)
        raw = await self.state.get(name)
        record = orjson.loads(raw) if raw else None
        if record is not None and now - float(record["at"]) < WINDOW_SECONDS:
            self._running.pop(name, None)
            future.cancel()
            if record["hash"] != digest:
                return Claim("", conflict=True)
            answer = record.get("answer")
            return Claim(str(record["platform_id"]), answer=answer, stale=answer is None)
        platform_id = f"idem:{who}:{key}:{int(now)}"
        await self.state.set(name, orjson.dumps({"hash": digest, "at": now, "platform_id": platform_id}).decode())
        return Claim(platform_id)

    async def settle(self, who: str, key: str, answer: dict[str, object] | None) -> None:
        """The run ended with ``answer`` (None: it did not finish here; a retry runs again)."""
        name = f"idem:{who}:{key}"
        digest, future = self._running.pop(name, ("", None))
        if answer is not None:
            raw = await self.state.get(name)
            record = orjson.loads(raw) if raw else {"hash": digest, "at": time.time(), "platform_id": ""}
            record["answer"] = answer
            await self.state.set(name, orjson.dumps(record).decode())
        if future is not None and not future.done():
            if answer is None:
                future.cancel()
            else:
                future.set_result(answer)
