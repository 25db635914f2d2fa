"""``Idempotency-Key``: a retried request (same key, same body) gets the stored answer.

A key is the caller's own (namespaced by ``Principal.id``) and lasts ``WINDOW_SECONDS``, the
window payment APIs use. Its record — the body's hash, when it was first used, the inbound's
platform id and, once the run ended, the answer — lives in the channel's durable key/value
state, so a retry after a hub restart is answered from it too. While the first request's run is
still going — even after that request timed out or its client left, when the channel follows the
run alone — a retry waits for the same answer rather than starting a second run.

A record without an answer that no run here is answering is a run cut off by a hub restart: its
answer went out through the outbox with nobody to take it, so it cannot be replayed
(``Claim.lost``). A request that ended before its inbound was recorded (429, 503 …) leaves no
record (``forget``): a retry runs.
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
    running: asyncio.Future[dict[str, object] | None] | None = None
    """The same request still running here: await its answer (None: it ended without one;
    claim again)."""
    conflict: bool = False
    """The key was used with a different body."""
    lost: bool = False
    """The key's run was cut off by a hub restart: its answer cannot be replayed."""


@dataclass(slots=True)
class IdempotencyKeys:
    state: KeyValueState
    _running: dict[str, tuple[str, asyncio.Future[dict[str, object] | None]]] = field(default_factory=dict)

    async def claim(self, who: str, key: str, digest: str, *, now: float | None = None) -> Claim:
        now = time.time() if now is None else now
        name = f"idem:{who}:{key}"
        running = self._running.get(name)
        if running is not None:
            return Claim("", running=running[1]) if running[0] == digest else Claim("", conflict=True)
        # Claimed before the first await, so a concurrent retry finds it running.
        future: asyncio.Future[dict[str, object] | None] = asyncio.get_running_loop().create_future()
        self._running[name] = (digest, future)
        raw = await self.state.get(name)
        record = orjson.loads(raw) if raw else None
        if record is not None and now - float(record["at"]) < WINDOW_SECONDS:
            self._running.pop(name, None)
            future.set_result(None)  # a retry that came meanwhile claims again and finds the record
            if record["hash"] != digest:
                return Claim("", conflict=True)
            answer = record.get("answer")
            return Claim(str(record["platform_id"]), answer=answer, lost=answer is None)
        platform_id = f"idem:{who}:{key}:{int(now)}"
        await self.state.set(name, orjson.dumps({"hash": digest, "at": now, "platform_id": platform_id}).decode())
        return Claim(platform_id)

    async def settle(self, who: str, key: str, answer: dict[str, object]) -> None:
        """The run ended with ``answer`` (a completion, or a stored error): kept for retries."""
        name = f"idem:{who}:{key}"
        try:
            raw = await self.state.get(name)
            record = orjson.loads(raw) if raw else {"hash": self._digest(name), "at": time.time(), "platform_id": ""}
            record["answer"] = answer
            await self.state.set(name, orjson.dumps(record).decode())
        finally:
            # Resolved only once stored: a retry meanwhile still finds the key running.
            self.abandon(who, key, answer)

    async def forget(self, who: str, key: str) -> None:
        """The request ended before its run was recorded: a retry with the key runs anew."""
        try:
            await self.state.set(f"idem:{who}:{key}", "")
        finally:
            self.abandon(who, key)

    def abandon(self, who: str, key: str, answer: dict[str, object] | None = None) -> None:
        """Nobody here answers the key any more; retries waiting on it get ``answer`` (None:
        claim again — the record then says whether to run or that the answer is lost)."""
        _, future = self._running.pop(f"idem:{who}:{key}", ("", None))
        if future is not None and not future.done():
            future.set_result(answer)

    def _digest(self, name: str) -> str:
        return self._running.get(name, ("", None))[0]
