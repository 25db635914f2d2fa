"""Deliverer against an in-memory PlatformOps double (the adapter interface, not an SDK)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest

from channels.delivery import Deliverer, FormattingRejected, PlatformOps
from channels.formatting import to_plain
from channels.ratelimit import Rate, RateLimiter, RateLimits, RetryAfter
from hub.channel import Capabilities
from hub.errors import ChannelError
from hub.messages import Button, ConversationRef, Outbound

CONV = ConversationRef(channel="tg", chat="42")
OTHER = ConversationRef(channel="tg", chat="43")
TG = Capabilities(max_length=200, dialect="telegram_html", edits=True, buttons=True, typing=True)
YES_NO = (Button(id="yes", label="Approve", style="primary"), Button(id="no", label="Deny"))


@dataclass
class Call:
    op: str
    conv: ConversationRef
    text: str = ""
    rich: bool = False
    message_id: str | None = None
    reply_to: str | None = None
    buttons: tuple[Button, ...] = ()
    nonce: str | None = None
    at: float = 0.0


@dataclass
class FakeOps:
    """Records every call; ``failures`` are raised, in order, by the calls they are queued for."""

    calls: list[Call] = field(default_factory=list)
    failures: dict[str, list[Exception]] = field(default_factory=dict)
    reject_rich: bool = False
    latency: float = 0.0
    messages: dict[str, str] = field(default_factory=dict)
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    def fail(self, op: str, *excs: Exception) -> None:
        self.failures.setdefault(op, []).extend(excs)

    async def _maybe_fail(self, op: str, rich: bool) -> None:
        if self.latency:
            await asyncio.sleep(self.latency)
        if self.failures.get(op):
            raise self.failures[op].pop(0)
        if rich and self.reject_rich:
            raise FormattingRejected("Bad Request: can't parse entities", status=400)

    def _record(self, call: Call) -> None:
        call.at = asyncio.get_running_loop().time()
        self.calls.append(call)
        self.changed.set()

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
        await self._maybe_fail("post", rich)
        message_id = f"m{len(self.messages) + 1}"
        self.messages[message_id] = text
        self._record(Call("post", conv, text, rich, message_id, reply_to, buttons, nonce))
        return message_id

    async def edit(
        self, conv: ConversationRef, message_id: str, text: str, *, rich: bool, buttons: tuple[Button, ...]
    ) -> None:
        await self._maybe_fail("edit", rich)
        assert message_id in self.messages, f"edit of unknown message {message_id}"
        self.messages[message_id] = text
        self._record(Call("edit", conv, text, rich, message_id, buttons=buttons))

    async def typing(self, conv: ConversationRef) -> None:
        await self._maybe_fail("typing", False)
        self._record(Call("typing", conv))

    def of(self, op: str) -> list[Call]:
        return [c for c in self.calls if c.op == op]

    async def wait_for(self, predicate: object, timeout: float = 5.0) -> None:
        async with asyncio.timeout(timeout):
            while not predicate():  # type: ignore[operator]
                self.changed.clear()
                await self.changed.wait()


@pytest.fixture
def ops() -> FakeOps:
    return FakeOps()


@pytest.fixture
def limiter() -> RateLimiter:
    return RateLimiter(RateLimits(per_chat=Rate(1000.0, 100)))


@pytest.fixture
async def deliverer(ops: FakeOps, limiter: RateLimiter) -> AsyncIterator[Deliverer]:
    async with Deliverer(ops, TG, limiter, edit_interval=0.05, typing_interval=0.1) as d:
        yield d


def test_the_double_is_a_platform_ops() -> None:
    ops: PlatformOps = FakeOps()
    assert ops is not None


# -- finals ------------------------------------------------------------------------------


async def test_short_reply_is_rendered_and_posted_once(ops: FakeOps, deliverer: Deliverer) -> None:
    out = Outbound(conversation=CONV, text="**hi** a < b", reply_to_platform_id="u7", buttons=YES_NO)
    delivery = await deliverer.send(out)
    [post] = ops.of("post")
    assert post.text == "<b>hi</b> a &lt; b" and post.rich
    assert post.reply_to == "u7" and post.buttons == YES_NO
    assert post.nonce == f"{out.id}:0"
    assert delivery.platform_ids == (post.message_id,)


async def test_long_reply_split_numbered_buttons_last_reply_first(ops: FakeOps, deliverer: Deliverer) -> None:
    text = "\n\n".join(f"Paragraph {i} says *something* & more." for i in range(20))
    out = Outbound(conversation=CONV, text=text, reply_to_platform_id="u7", buttons=YES_NO)
    delivery = await deliverer.send(out)
    posts = ops.of("post")
    n = len(posts)
    assert n > 1 and delivery.platform_ids == tuple(p.message_id for p in posts)
    for i, post in enumerate(posts, 1):
        assert len(post.text) <= TG.max_length
        assert post.text.startswith(f"({i}/{n}) ")
        assert post.nonce == f"{out.id}:{i - 1}"
        assert post.reply_to == ("u7" if i == 1 else None)
        assert post.buttons == (YES_NO if i == n else ())
    shown = " ".join(p.text for p in posts)
    assert all(f"Paragraph {i} says <i>something</i> &amp; more." in shown for i in range(20))


async def test_rendering_growth_is_resplit_to_fit(ops: FakeOps, limiter: RateLimiter) -> None:
    # Every & becomes &amp; (5x): the Markdown fits, the HTML would not.
    deliverer = Deliverer(ops, TG, limiter)
    await deliverer.send(Outbound(conversation=CONV, text="& " * 95))
    posts = ops.of("post")
    assert len(posts) > 1
    assert all(len(p.text) <= TG.max_length for p in posts)
    assert sum(p.text.count("&amp;") for p in posts) == 95


async def test_code_block_split_stays_valid_html(ops: FakeOps, deliverer: Deliverer) -> None:
    code = "\n".join(f"if a < {i}: print('*{i}*')" for i in range(20))
    await deliverer.send(Outbound(conversation=CONV, text=f"```python\n{code}\n```"))
    posts = ops.of("post")
    assert len(posts) > 1
    for post in posts:
        assert post.text.count('<pre><code class="language-python">') == 1
        assert post.text.endswith("</code></pre>")


async def test_plain_format_skips_rendering(ops: FakeOps, deliverer: Deliverer) -> None:
    await deliverer.send(Outbound(conversation=CONV, text="**not bold** <x>", format="plain"))
    [post] = ops.of("post")
    assert post.text == "**not bold** <x>" and post.rich is False


async def test_formatting_rejection_falls_back_to_plain(ops: FakeOps, deliverer: Deliverer) -> None:
    ops.reject_rich = True
    text = "**bold** [link](https://ex.com) `x<y`"
    delivery = await deliverer.send(Outbound(conversation=CONV, text=text))
    [post] = ops.of("post")
    assert post.rich is False and post.text == to_plain(text) == "bold link (https://ex.com) x<y"
    assert delivery.platform_ids == (post.message_id,)


async def test_short_retry_after_halts_then_retries_nothing_doubled(
    ops: FakeOps, limiter: RateLimiter, deliverer: Deliverer
) -> None:
    ops.fail("post", ChannelError("Too Many Requests", retry_after=0.1, status=429))
    start = asyncio.get_running_loop().time()
    delivery = await deliverer.send(Outbound(conversation=CONV, text="hello"))
    [post] = ops.of("post")
    assert post.at - start >= 0.09  # waited out the halt before the retry
    assert delivery.platform_ids == (post.message_id,)
    assert len(ops.messages) == 1


async def test_global_retry_after_halts_other_chats(ops: FakeOps, limiter: RateLimiter) -> None:
    deliverer = Deliverer(ops, TG, limiter)
    ops.fail("post", RetryAfter("global", retry_after=0.1, global_scope=True))
    await deliverer.send(Outbound(conversation=CONV, text="one"))
    assert limiter.halted_for(None) == 0.0  # over by the time the retry went through
    ops.fail("post", RetryAfter("global", retry_after=0.3, global_scope=True))
    sender = asyncio.create_task(deliverer.send(Outbound(conversation=CONV, text="two")))
    async with asyncio.timeout(5):  # the 429 is answered at once; a busy machine may be slow to run it
        while limiter.halted_for(None) == 0.0:  # noqa: ASYNC110 - a halt has no event to await
            await asyncio.sleep(0.001)
    assert limiter.halted_for(None) > 0.2
    loop = asyncio.get_running_loop()
    start = loop.time()
    await deliverer.send(Outbound(conversation=OTHER, text="three"))  # another chat waits too
    assert loop.time() - start >= 0.2
    await sender
    assert [p.text for p in ops.of("post")] == ["one", "two", "three"] or len(ops.messages) == 3


async def test_long_retry_after_is_raised_and_a_resend_does_not_double(ops: FakeOps, limiter: RateLimiter) -> None:
    deliverer = Deliverer(ops, TG, limiter, max_retry_after=0.5)
    out = Outbound(conversation=CONV, text="\n\n".join(f"part {i} " + "x" * 120 for i in range(3)))
    ops.fail("post", *[])  # first part succeeds
    original_post = ops.post
    count = 0

    async def flaky_post(*args: object, **kw: object) -> str:
        nonlocal count
        count += 1
        if count == 2:
            raise ChannelError("Too Many Requests", retry_after=5.0, status=429)
        return await original_post(*args, **kw)  # type: ignore[arg-type]

    ops.post = flaky_post  # type: ignore[method-assign]
    with pytest.raises(ChannelError) as info:
        await deliverer.send(out)
    assert info.value.retry_after == 5.0
    assert len(ops.of("post")) == 1
    assert limiter.halted_for("tg:42") > 4  # later sends to the chat wait too
    # The outbox retries later (we lift the halt to keep the test fast).
    limiter._halts.clear()
    delivery = await deliverer.send(out)
    posts = ops.of("post")
    assert [p.text[:5] for p in posts] == ["(1/3)", "(2/3)", "(3/3)"]
    assert delivery.platform_ids == ("m1", "m2", "m3")
    # Dispatched once more after success: nothing is sent again.
    assert (await deliverer.send(out)).platform_ids == ("m1", "m2", "m3")
    assert len(ops.of("post")) == 3


async def test_transient_error_without_retry_after_propagates(ops: FakeOps, deliverer: Deliverer) -> None:
    ops.fail("post", ChannelError("Bad Gateway", status=502))
    with pytest.raises(ChannelError, match="Bad Gateway"):
        await deliverer.send(Outbound(conversation=CONV, text="x"))
    assert ops.of("post") == []


async def test_repeated_429_gives_up_after_max_attempts(ops: FakeOps, limiter: RateLimiter) -> None:
    deliverer = Deliverer(ops, TG, limiter, max_attempts=2)
    ops.fail("post", *(ChannelError("429", retry_after=0.01) for _ in range(3)))
    with pytest.raises(ChannelError, match="429"):
        await deliverer.send(Outbound(conversation=CONV, text="x"))
    assert len(ops.failures["post"]) == 1


async def test_edit_of_edits_the_earlier_message(ops: FakeOps, deliverer: Deliverer) -> None:
    first = Outbound(conversation=CONV, text="Approve this?", buttons=YES_NO)
    d1 = await deliverer.send(first)
    d2 = await deliverer.send(Outbound(conversation=CONV, text="_Approved._", edit_of=first.id))
    [edit] = ops.of("edit")
    assert edit.message_id == d1.platform_ids[0] and edit.text == "<i>Approved.</i>" and edit.buttons == ()
    assert d2.platform_ids == d1.platform_ids
    # An unknown edit_of (e.g. after a restart) becomes a new message rather than an error.
    await deliverer.send(Outbound(conversation=CONV, text="x", edit_of="unknown"))
    assert len(ops.of("post")) == 2


async def test_no_buttons_platform_lists_the_choices(ops: FakeOps, limiter: RateLimiter) -> None:
    caps = Capabilities(max_length=200, dialect="plain")
    await Deliverer(ops, caps, limiter).send(Outbound(conversation=CONV, text="**Run it?**", buttons=YES_NO))
    [post] = ops.of("post")
    assert post.text == "Run it?\n\nApprove / Deny" and post.buttons == () and post.rich is False


# -- streaming ---------------------------------------------------------------------------


def partial(text: str, stream: str = "s1", conv: ConversationRef = CONV) -> Outbound:
    return Outbound(conversation=conv, text=text, final=False, stream=stream)


async def test_stream_edits_are_coalesced_throttled_and_finished(ops: FakeOps, deliverer: Deliverer) -> None:
    loop = asyncio.get_running_loop()
    first = await deliverer.send(partial("Hel"))
    [post] = ops.of("post")
    assert post.message_id is not None
    assert first.platform_ids == (post.message_id,) and post.text == "Hel"
    start = loop.time()
    for i in range(20):  # a burst of deltas faster than the edit interval
        d = await deliverer.send(partial("Hello " + "w" * i))
        assert d.platform_ids == (post.message_id,)
    burst = loop.time() - start
    await ops.wait_for(lambda: ops.messages[post.message_id] == "Hello " + "w" * 19)
    edits = ops.of("edit")
    # Coalesced: at most one edit per interval the burst spanned, plus the trailing one (a busy
    # machine can stretch the burst, so the bound follows its measured length, not a constant).
    assert 1 <= len(edits) <= 2 + int(burst / 0.05), (len(edits), burst)
    # Throttled, as cumulative bounds from the first post (the k-th edit no sooner than k
    # intervals after it): a gap between two edits can shrink when one was recorded late.
    assert all(e.at - post.at >= (k + 1) * 0.05 - 0.001 for k, e in enumerate(edits)), [e.at - post.at for e in edits]
    final = await deliverer.send(Outbound(conversation=CONV, text="**Hello world**", stream="s1"))
    assert final.platform_ids == (post.message_id,)
    assert ops.messages[post.message_id] == "<b>Hello world</b>"
    assert len(ops.of("post")) == 1
    # A straggling partial after the final is dropped.
    assert (await deliverer.send(partial("late"))).platform_ids == ()
    await asyncio.sleep(0.08)
    assert ops.messages[post.message_id] == "<b>Hello world</b>"


async def test_partials_never_hold_the_caller_for_the_edit_interval(ops: FakeOps, limiter: RateLimiter) -> None:
    deliverer = Deliverer(ops, TG, limiter, edit_interval=10.0)
    await deliverer.send(partial("a"))
    async with asyncio.timeout(5):  # far less than the interval: no partial waits for it
        for i in range(20):
            await deliverer.send(partial("a" + "b" * i))
    assert ops.of("edit") == [] and len(ops.of("post")) == 1  # the trailing edit waits instead
    final = await deliverer.send(Outbound(conversation=CONV, text="done", stream="s1"))
    assert final.platform_ids == ("m1",) and ops.messages["m1"] == "done"
    await deliverer.aclose()


async def test_long_final_of_a_stream_edits_part_one_and_posts_the_rest(ops: FakeOps, deliverer: Deliverer) -> None:
    await deliverer.send(partial("Thinking"))
    text = "\n\n".join(f"Paragraph {i} " + "z" * 60 for i in range(6))
    delivery = await deliverer.send(Outbound(conversation=CONV, text=text, stream="s1", buttons=YES_NO))
    posts, edits = ops.of("post"), ops.of("edit")
    assert edits[-1].message_id == "m1" and edits[-1].text.startswith("(1/")
    assert delivery.platform_ids == ("m1", *(p.message_id for p in posts[1:]))
    assert posts[-1].buttons == YES_NO and edits[-1].buttons == ()


async def test_partial_longer_than_the_limit_shows_a_preview(ops: FakeOps, deliverer: Deliverer) -> None:
    await deliverer.send(partial("word " * 100))
    [post] = ops.of("post")
    assert len(post.text) <= TG.max_length and post.text.endswith("…")


async def test_final_while_first_partial_post_is_in_flight_edits_it(ops: FakeOps, deliverer: Deliverer) -> None:
    ops.latency = 0.05
    first = asyncio.create_task(deliverer.send(partial("Hel")))
    await asyncio.sleep(0.01)
    delivery = await deliverer.send(Outbound(conversation=CONV, text="Hello", stream="s1"))
    await first
    assert len(ops.of("post")) == 1
    assert delivery.platform_ids == ("m1",) and ops.messages["m1"] == "Hello"


async def test_no_edits_platform_drops_partials(ops: FakeOps, limiter: RateLimiter) -> None:
    caps = Capabilities(max_length=200, dialect="slack_mrkdwn", edits=False)
    deliverer = Deliverer(ops, caps, limiter)
    assert (await deliverer.send(partial("a"))).platform_ids == ()
    await deliverer.send(Outbound(conversation=CONV, text="**done**", stream="s1"))
    [post] = ops.of("post")
    assert post.text == "*done*"


async def test_failed_partial_is_not_fatal(ops: FakeOps, deliverer: Deliverer) -> None:
    ops.fail("post", ChannelError("Bad Gateway", status=502))
    assert (await deliverer.send(partial("a"))).platform_ids == ()
    delivery = await deliverer.send(Outbound(conversation=CONV, text="final", stream="s1"))
    assert delivery.platform_ids == ("m1",) and ops.messages["m1"] == "final"


async def test_aclose_cancels_trailing_edits(ops: FakeOps, limiter: RateLimiter) -> None:
    deliverer = Deliverer(ops, TG, limiter, edit_interval=10.0)
    await deliverer.send(partial("a"))
    await deliverer.send(partial("ab"))  # a trailing edit now waits ~10 s
    await deliverer.aclose()
    assert ops.of("edit") == []
    with pytest.raises(RuntimeError, match="aclose"):
        await deliverer.send(partial("abc"))
    await deliverer.aclose()  # idempotent


async def test_edit_interval_is_per_chat(ops: FakeOps, limiter: RateLimiter) -> None:
    deliverer = Deliverer(ops, TG, limiter, edit_interval=10.0)
    await deliverer.send(partial("a", "s1", CONV))
    await deliverer.send(partial("b", "s2", OTHER))
    assert len(ops.of("post")) == 2  # a different chat is not held back
    await deliverer.aclose()


# -- typing ------------------------------------------------------------------------------


async def test_typing_is_throttled_and_failures_swallowed(ops: FakeOps, deliverer: Deliverer) -> None:
    for _ in range(3):
        assert (await deliverer.send(Outbound(conversation=CONV, text="", typing=True))).platform_ids == ()
    await deliverer.send(Outbound(conversation=OTHER, text="", typing=True))
    assert [c.conv for c in ops.of("typing")] == [CONV, OTHER]
    await asyncio.sleep(0.11)
    ops.fail("typing", ChannelError("Forbidden", retryable=False, status=403))
    await deliverer.send(Outbound(conversation=CONV, text="", typing=True))  # raises nothing
    await asyncio.sleep(0.11)
    await deliverer.send(Outbound(conversation=CONV, text="", typing=True))
    assert len(ops.of("typing")) == 3


async def test_rate_limiter_spaces_posts(ops: FakeOps) -> None:
    limiter = RateLimiter(RateLimits(per_chat=Rate(20.0, 1)))
    deliverer = Deliverer(ops, TG, limiter)
    start = asyncio.get_running_loop().time()
    await deliverer.send(Outbound(conversation=CONV, text=" ".join(["word"] * 120)))
    posts = ops.of("post")
    assert len(posts) >= 3
    # Cumulative bounds (the k-th post no sooner than k intervals after the start), not gaps: a
    # post resumed late by a busy CI box shrinks the gap after it though the spacing was right.
    assert all(p.at - start >= k * 0.05 - 0.001 for k, p in enumerate(posts)), [p.at - start for p in posts]
