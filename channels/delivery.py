"""Delivering ``Outbound``s through a platform's three primitive operations.

An adapter implements ``PlatformOps`` (post, edit, typing) on its SDK and hands every outbound to
a ``Deliverer``, which does the rest the same way on every platform:

* **typing** indicators, throttled per chat;
* **progressive replies**: the partials of one ``stream`` become one message, edited in place
  at most once per ``edit_interval`` per chat. Only the latest text is shown; the edit is done
  by a trailing task the Deliverer owns, so the caller is never held up for the interval. The
  final outbound finishes that message (as part 1 if it has to be split);
* **splitting after rendering**: the Markdown is split first (so no part cuts a tag or an
  escape in two), each part rendered to the platform's dialect, and a part whose rendering
  is still too long is split smaller;
* **formatting rejection**: a part the platform refuses for its markup (``FormattingRejected``)
  is re-sent as plain text: never lost;
* **rate limits**: a ``RateLimiter`` slot before every post and edit; a 429 with a short
  ``retry_after`` halts the scope and retries the same call, a long one propagates so the hub's
  outbox retries later;
* **idempotency**: each post carries ``nonce = f"{outbound.id}:{part}"[:25]`` (Discord's
  ``enforce_nonce``), parts already posted are not posted again when the outbox retries a send
  that failed half-way, and a send of an outbound already delivered returns the same ids.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Generic, Protocol, TypeVar

from hub.channel import Capabilities
from hub.errors import ChannelError
from hub.messages import Button, ConversationRef, Delivery, Outbound

from .formatting import render, to_plain
from .ratelimit import RateLimiter, scope_of
from .splitting import NUMBER_RESERVE, numbering, split_text

__all__ = ["Deliverer", "FormattingRejected", "PlatformOps"]

logger = logging.getLogger(__name__)

T = TypeVar("T")
K = TypeVar("K")
V = TypeVar("V")

_NONCE_MAX = 25
"""Discord's nonce limit, the strictest of the platforms that take one."""


class FormattingRejected(ChannelError):
    """The platform refused a message because of its markup (Telegram "can't parse entities",
    Slack ``invalid_blocks``…). Not transient: the same text would fail again; the Deliverer
    re-sends it as plain text instead."""

    def __init__(
        self,
        message: str = "the platform refused the message's formatting",
        *,
        status: int | str | None = None,
    ) -> None:
        super().__init__(message, retryable=False, status=status)


class PlatformOps(Protocol):
    """What an adapter implements on its SDK. Raise ``ChannelError`` (translated from the SDK's
    errors, ``retry_after`` set for a 429) or ``FormattingRejected``.

    Every id here is the platform's (``reply_to``, ``message_id``, the id ``post`` returns),
    except ``nonce``: the hub's ``Outbound.id``, as the platform's idempotency key."""

    async def post(
        self,
        conv: ConversationRef,
        text: str,
        *,
        rich: bool,
        reply_to: str | None,
        buttons: tuple[Button, ...],
        nonce: str | None,
    ) -> str:
        """Send a new message; return the platform's message id. ``rich`` is False for text
        that must be shown literally (no parse mode)."""
        ...

    async def edit(
        self, conv: ConversationRef, message_id: str, text: str, *, rich: bool, buttons: tuple[Button, ...]
    ) -> None: ...

    async def typing(self, conv: ConversationRef) -> None: ...


class _LRU(Generic[K, V]):
    """A bounded mapping: the least recently used entry goes first."""

    def __init__(self, size: int) -> None:
        self._data: OrderedDict[K, V] = OrderedDict()
        self._size = size

    def get(self, key: K) -> V | None:
        value = self._data.get(key)
        if value is not None:
            self._data.move_to_end(key)
        return value

    def put(self, key: K, value: V) -> V | None:
        """Store ``value``; return an evicted value, if any."""
        self._data[key] = value
        self._data.move_to_end(key)
        if len(self._data) > self._size:
            return self._data.popitem(last=False)[1]
        return None

    def pop(self, key: K) -> V | None:
        return self._data.pop(key, None)

    def values(self) -> list[V]:
        return list(self._data.values())


@dataclass(frozen=True, slots=True)
class _Part:
    text: str
    """What to send: rendered in the dialect when ``rich``, else literal."""
    plain: str
    """The fallback when the platform refuses ``text``'s formatting."""
    rich: bool


@dataclass(slots=True)
class _Record:
    ids: list[str] = field(default_factory=list)
    complete: bool = False


@dataclass(slots=True, kw_only=True)
class _Stream:
    conv: ConversationRef
    message_id: str | None = None
    shown: str | None = None
    pending: Outbound | None = None
    finished: bool = False
    trailing: asyncio.Task[None] | None = None
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


class Deliverer:
    """Sends outbounds through ``ops`` as ``capabilities`` allow, under ``limiter``.

    Args:
        ops: the adapter's primitive operations.
        capabilities: the platform's (``max_length``, ``dialect``, ``edits``, ``buttons``, ``typing``).
        limiter: the bot's rate limiter (shared with the adapter's other calls).
        edit_interval: minimum seconds between two progressive edits in one chat.
        number_parts: prefix split parts with ``(i/n)``.
        max_retry_after: a 429 asking to wait longer than this is raised to the caller (the
            outbox retries later) rather than waited out here.
        typing_interval: at most one typing indicator per chat per this many seconds.
        max_attempts: calls per part before a repeated 429 is raised.
        is_group: tells the limiter which chats are groups (Telegram's 20/min per group).
        remember: how many recent outbounds' platform ids are kept for ``edit_of`` and retries.
        measure: a text's length as the platform counts it against ``max_length`` (Telegram:
            UTF-16 code units); code points by default.
    """

    def __init__(
        self,
        ops: PlatformOps,
        capabilities: Capabilities,
        limiter: RateLimiter,
        *,
        edit_interval: float = 1.0,
        number_parts: bool = True,
        max_retry_after: float = 30.0,
        typing_interval: float = 4.0,
        max_attempts: int = 4,
        is_group: Callable[[ConversationRef], bool] | None = None,
        remember: int = 1024,
        measure: Callable[[str], int] = len,
    ) -> None:
        self.ops = ops
        self.capabilities = capabilities
        self.limiter = limiter
        self.edit_interval = edit_interval
        self.number_parts = number_parts
        self.max_retry_after = max_retry_after
        self.typing_interval = typing_interval
        self.max_attempts = max(1, max_attempts)
        self._is_group = is_group or (lambda conv: False)
        self._measure = measure
        self._records: _LRU[str, _Record] = _LRU(remember)
        self._streams: _LRU[str, _Stream] = _LRU(256)
        self._last_edit: _LRU[str, float] = _LRU(remember)
        self._typing_at: _LRU[str, float] = _LRU(remember)
        self._tasks: set[asyncio.Task[None]] = set()
        self._closed = False

    # -- lifecycle -------------------------------------------------------------------------

    async def __aenter__(self) -> Deliverer:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Cancel pending progressive edits and wait for them to end. Idempotent."""
        self._closed = True
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    # -- the entry point -------------------------------------------------------------------

    async def send(self, outbound: Outbound) -> Delivery:
        """Deliver one outbound; return the platform ids of the message(s) it became."""
        if self._closed:
            raise RuntimeError("Deliverer.send() after aclose()")
        if outbound.typing:
            await self._typing(outbound.conversation)
            return Delivery()
        if not outbound.final:
            return await self._partial(outbound)
        return await self._final(outbound)

    # -- typing ----------------------------------------------------------------------------

    async def _typing(self, conv: ConversationRef) -> None:
        if not self.capabilities.typing:
            return
        now = self._now()
        last = self._typing_at.get(conv.key)
        if last is not None and now - last < self.typing_interval:
            return
        self._typing_at.put(conv.key, now)
        try:
            await self.ops.typing(conv)
        except ChannelError as exc:  # an indicator is cosmetic: never fail a run for it
            logger.debug("typing indicator failed in %s: %s", conv.key, exc)

    # -- rendering and splitting -----------------------------------------------------------

    def _rich(self, fmt: str) -> bool:
        return fmt == "markdown" and self.capabilities.dialect != "plain"

    def _part(self, markdown: str, fmt: str) -> _Part:
        plain = markdown if fmt == "plain" else to_plain(markdown)
        if self._rich(fmt):
            return _Part(render(markdown, self.capabilities.dialect), plain, True)
        return _Part(plain, plain, False)

    def _parts(self, text: str, fmt: str) -> list[_Part]:
        limit = self.capabilities.max_length
        whole = self._part(text, fmt)
        if self._size(whole) <= limit:
            return [whole]
        reserve = NUMBER_RESERVE if self.number_parts else 0
        room = max(1, limit - reserve)
        todo = split_text(text, room, number=False)
        done: list[str] = []
        while todo:
            md = todo.pop(0)
            shown = self._size(self._part(md, fmt))
            if shown <= room or len(md) <= 1:
                done.append(md)
                continue
            # Rendering grew it (escapes, tags): split this part smaller, in proportion.
            smaller = min(len(md) - 1, max(1, len(md) * room // shown - 1))
            todo[:0] = split_text(md, smaller, number=False)
        if self.number_parts and len(done) > 1:
            done = [numbering(i, len(done), md) for i, md in enumerate(done, 1)]
        parts = [self._part(md, fmt) for md in done]
        for part in parts:
            if self._size(part) > limit:  # only for absurd limits; keep the length promise
                logger.warning("a rendered part is %d chars over a %d limit", self._size(part), limit)
        return [p if self._size(p) <= limit else _Part(p.plain[:limit], p.plain[:limit], False) for p in parts]

    def _size(self, part: _Part) -> int:
        """What counts against the limit: the larger of the part and its plain-text fallback."""
        return max(self._measure(part.text), self._measure(part.plain))

    def _preview(self, outbound: Outbound) -> _Part:
        """A partial's text, cut to fit one message (the head: part 1 of the final replaces it)."""
        limit = self.capabilities.max_length
        part = self._part(outbound.text, outbound.format)
        budget = limit - 2
        while self._size(part) > limit and budget > 1:
            head = split_text(outbound.text, budget, number=False)[0].rstrip() + "\n…"
            part = self._part(head, outbound.format)
            budget = min(budget - 1, budget * limit // max(1, self._size(part)) - 1)
        if self._size(part) > limit:
            return _Part(part.plain[:limit], part.plain[:limit], False)
        return part

    # -- calls with rate limits, 429 retries and the plain-text fallback ----------------------

    def _now(self) -> float:
        return asyncio.get_running_loop().time()

    def _chat_key(self, conv: ConversationRef) -> str:
        return f"{conv.channel}:{conv.chat}"  # platforms limit per chat, threads included

    async def _attempt(self, conv: ConversationRef, call: Callable[[], Awaitable[T]]) -> T:
        key = self._chat_key(conv)
        group = self._is_group(conv)
        for attempt in range(1, self.max_attempts + 1):
            await self.limiter.acquire(key, group=group)
            try:
                return await call()
            except FormattingRejected:
                raise
            except ChannelError as exc:
                if exc.retry_after is None:
                    raise
                self.limiter.halt(scope_of(exc, key), exc.retry_after)
                if exc.retry_after > self.max_retry_after or attempt == self.max_attempts:
                    raise
                logger.info("429 in %s: retrying in %.1f s (attempt %d)", key, exc.retry_after, attempt)
        raise AssertionError("unreachable")

    async def _deliver(self, conv: ConversationRef, part: _Part, call: Callable[[str, bool], Awaitable[T]]) -> T:
        if not part.rich:
            return await self._attempt(conv, lambda: call(part.text, False))
        try:
            return await self._attempt(conv, lambda: call(part.text, True))
        except FormattingRejected as exc:
            logger.warning("%s refused a message's formatting (%s); sending plain text", conv.channel, exc)
            return await self._attempt(conv, lambda: call(part.plain, False))

    def _post(
        self,
        conv: ConversationRef,
        part: _Part,
        *,
        reply_to: str | None,
        buttons: tuple[Button, ...],
        nonce: str,
    ) -> Awaitable[str]:
        return self._deliver(
            conv,
            part,
            lambda text, rich: self.ops.post(
                conv, text, rich=rich, reply_to=reply_to, buttons=buttons, nonce=nonce[:_NONCE_MAX]
            ),
        )

    def _edit(
        self, conv: ConversationRef, message_id: str, part: _Part, buttons: tuple[Button, ...]
    ) -> Awaitable[None]:
        return self._deliver(
            conv, part, lambda text, rich: self.ops.edit(conv, message_id, text, rich=rich, buttons=buttons)
        )

    # -- partials --------------------------------------------------------------------------

    async def _partial(self, outbound: Outbound) -> Delivery:
        if not (self.capabilities.edits and outbound.stream):
            return Delivery()  # nothing to edit in place: only the final is sent
        stream = self._streams.get(outbound.stream)
        if stream is None:
            if self._records.get(f"stream:{outbound.stream}") is not None:
                return Delivery()  # a straggler after the final
            stream = _Stream(conv=outbound.conversation)
            evicted = self._streams.put(outbound.stream, stream)
            if evicted is not None and evicted.trailing is not None:
                evicted.trailing.cancel()
        if stream.finished:
            return Delivery()
        stream.pending = outbound
        if stream.message_id is None:  # only the first post is serialised; edits never wait here
            async with stream.lock:
                if stream.message_id is None and stream.pending is outbound:
                    return await self._first_post(outbound, stream)
        if stream.message_id is None:
            return Delivery()
        if stream.trailing is None or stream.trailing.done():
            task = asyncio.create_task(self._trailing_edits(stream), name=f"deliverer-edit-{outbound.stream}")
            stream.trailing = task
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return Delivery(platform_ids=(stream.message_id,))

    async def _first_post(self, outbound: Outbound, stream: _Stream) -> Delivery:
        part = self._preview(outbound)
        stream.pending = None
        try:
            message_id = await self._post(
                outbound.conversation,
                part,
                reply_to=outbound.reply_to_platform_id,
                buttons=(),
                nonce=f"{outbound.id}:0",
            )
        except ChannelError as exc:  # partials are not durable; the final still goes out
            logger.warning("progressive message in %s failed: %s", outbound.conversation.key, exc)
            return Delivery()
        stream.message_id, stream.shown = message_id, part.text
        self._last_edit.put(self._chat_key(stream.conv), self._now())
        return Delivery(platform_ids=(message_id,))

    async def _trailing_edits(self, stream: _Stream) -> None:
        key = self._chat_key(stream.conv)
        while stream.pending is not None and not stream.finished:
            last = self._last_edit.get(key)
            wait = 0.0 if last is None else last + self.edit_interval - self._now()
            if wait > 0:
                await asyncio.sleep(wait)
            pending, stream.pending = stream.pending, None
            if pending is None or stream.finished or stream.message_id is None:
                return
            part = self._preview(pending)
            if part.text == stream.shown:
                continue
            self._last_edit.put(key, self._now())
            async with stream.lock:
                try:
                    await self._edit(stream.conv, stream.message_id, part, ())
                except ChannelError as exc:
                    logger.warning("progressive edit in %s failed: %s", stream.conv.key, exc)
                    continue
            stream.shown = part.text

    # -- finals ----------------------------------------------------------------------------

    async def _final(self, outbound: Outbound) -> Delivery:
        record = self._records.get(outbound.id)
        if record is not None and record.complete:
            # Already delivered: a re-dispatch of the same outbound is not a second send.
            return Delivery(platform_ids=tuple(record.ids))
        if record is None:
            record = _Record()
            self._records.put(outbound.id, record)
        conv = outbound.conversation
        text, buttons = outbound.text, outbound.buttons
        if buttons and not self.capabilities.buttons:
            text = f"{text}\n\n" + " / ".join(b.label for b in buttons)
            buttons = ()
        stream = self._streams.get(outbound.stream) if outbound.stream else None
        if stream is not None:
            stream.finished = True
            if stream.trailing is not None:
                stream.trailing.cancel()
                await asyncio.gather(stream.trailing, return_exceptions=True)
        if not text.strip():
            return await self._finish(outbound, record, stream)
        parts = self._parts(text, outbound.format)
        async with stream.lock if stream is not None else contextlib.nullcontext():
            targets, shown = self._edit_targets(outbound, stream)
            for index, part in enumerate(parts):
                if index < len(record.ids):
                    continue  # posted by an earlier attempt of this same outbound
                last = index == len(parts) - 1
                part_buttons = buttons if last else ()
                if index < len(targets):
                    if not (index == 0 and part.text == shown and not part_buttons):
                        await self._edit(conv, targets[index], part, part_buttons)
                    record.ids.append(targets[index])
                else:
                    record.ids.append(
                        await self._post(
                            conv,
                            part,
                            reply_to=outbound.reply_to_platform_id if index == 0 else None,
                            buttons=part_buttons,
                            nonce=f"{outbound.id}:{index}",
                        )
                    )
        return await self._finish(outbound, record, stream)

    def _edit_targets(self, outbound: Outbound, stream: _Stream | None) -> tuple[list[str], str | None]:
        """Existing messages the final's first parts replace, and what the first one shows."""
        if not self.capabilities.edits:
            return [], None
        if outbound.edit_of:
            earlier = self._records.get(outbound.edit_of)
            if earlier is not None and earlier.ids:
                return list(earlier.ids), None
            logger.debug("edit_of %s is not a recent outbound: sending a new message", outbound.edit_of)
        if stream is not None and stream.message_id is not None:
            return [stream.message_id], stream.shown
        return [], None

    async def _finish(self, outbound: Outbound, record: _Record, stream: _Stream | None) -> Delivery:
        if not record.ids and stream is not None and stream.message_id is not None:
            record.ids.append(stream.message_id)
        record.complete = True
        if outbound.stream:
            self._streams.pop(outbound.stream)
            self._records.put(f"stream:{outbound.stream}", _Record(list(record.ids), True))
        return Delivery(platform_ids=tuple(record.ids))
