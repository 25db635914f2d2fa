"""Task pool figures: submit latency and throughput, start-up with pending tasks, and a chat
message's answer latency with background tasks queued.

    .venv/bin/python bench/tasks.py [--tasks 10000] [--pending 10000] [--background 500] [--latency 1.0]

1. ``--tasks`` tasks submitted (in waves of ``--wave`` at once) to a hub on SQLite whose agent
   is an instant model (one step, then the answer, in process): each ``submit``'s latency, and
   completed tasks per second from the first submit to the last completion.
2. A hub started on a database holding ``--pending`` pending tasks: ``Hub.start`` time.
3. The real LLM agent on the fake OpenAI server answering after ``--latency`` seconds: a chat
   message's answer latency (inbox to the channel's send) idle, then with ``--background``
   tasks queued (``[sessions] max_concurrent_runs`` 100: 99 slots for them). Goal: within
   1.2x of idle.

The last line of output is one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

# Import from the repo root, not bench/ (as a script, bench/ is sys.path[0]).
sys.path[0] = str(Path(__file__).resolve().parents[1])

from bench._common import emit, latency_figures
from hub.agent import Checkpointing, HistoryItem, RunContext
from hub.app import Hub
from hub.channel import Capabilities, Inbox
from hub.config import Settings
from hub.messages import ConversationRef, Delivery, Inbound, Outbound, Sender
from hub.store import Store
from hub.store.tasks import SQLTaskStore
from hub.tasks import Task
from tests.fakes.llm_script import LLMScript
from tests.fakes.openai_server import FakeOpenAI

CONV = ConversationRef(channel="bench", chat="tasks")
OWNER = Sender(id="u1", name="bench")


class _Channel:
    name = "bench"
    capabilities = Capabilities()
    problem: str | None = None

    def __init__(self) -> None:
        self.inbox: Inbox | None = None
        self.answered: dict[str, asyncio.Future[float]] = {}

    async def start(self, inbox: Inbox) -> None:
        self.inbox = inbox

    async def stop(self) -> None: ...

    async def send(self, msg: Outbound) -> Delivery:
        waiter = self.answered.get(msg.conversation.chat)
        if msg.final and not msg.typing and waiter is not None and not waiter.done():
            waiter.set_result(time.perf_counter())
        return Delivery(platform_ids=("x",))

    async def chat(self, chat: str, text: str) -> float:
        """Seconds from the inbox to the answer's send."""
        assert self.inbox is not None
        waiter = self.answered[chat] = asyncio.get_running_loop().create_future()
        started = time.perf_counter()
        inbound = Inbound(
            kind="message", conversation=ConversationRef(channel="bench", chat=chat), sender=OWNER, text=text
        )
        await self.inbox(inbound)
        answered: float = await waiter
        return answered - started


class _InstantAgent:
    """An instant model: one step (a checkpoint write), then the answer."""

    async def _run(self, ctx: RunContext) -> AsyncIterator[Outbound]:
        if isinstance(ctx, Checkpointing):
            await ctx.step([HistoryItem(kind="assistant", data={"text": "ok"})], label="model")
        yield Outbound(conversation=ctx.conversation, text="ok", inbound_id=ctx.inbound.id)

    def run(self, ctx: RunContext) -> AsyncIterator[Outbound]:
        return self._run(ctx)


def _settings(tmp: Path, **over: Any) -> Settings:
    base: dict[str, Any] = {
        "hub": {"data_dir": str(tmp)},
        "server": {"enabled": False},
        "channels": {"web": {"enabled": False}, "api": {"enabled": False}},
        **over,
    }
    return Settings.model_validate(base)


async def throughput(tmp: Path, n: int, wave: int) -> dict[str, float]:
    channel = _Channel()
    async with Hub(_settings(tmp), agent=_InstantAgent(), channels={"bench": channel}) as hub:
        tasks = hub.tasks
        latencies: list[float] = []

        async def submit(i: int) -> Task:
            t0 = time.perf_counter()
            task = await tasks.submit(f"task {i}", conversation=CONV, owner=OWNER)
            latencies.append(time.perf_counter() - t0)
            return task

        started = time.perf_counter()
        submitted: list[Task] = []
        for first in range(0, n, wave):
            submitted += await asyncio.gather(*(submit(i) for i in range(first, min(n, first + wave))))
        for task in submitted:
            await tasks.wait(task.id, timeout=600)
        seconds = time.perf_counter() - started
        completed = len(await tasks.list(states=["completed"]))
    assert completed == n, completed
    return {**latency_figures("submit_", latencies), "completed_tasks_per_s": round(n / seconds, 1)}


async def startup(tmp: Path, n: int) -> dict[str, float]:
    settings = _settings(tmp)
    async with Store(settings.store_url) as store:
        rows = SQLTaskStore(store)
        await asyncio.gather(
            *(rows.insert(Task(id=f"t{i:06d}", text=f"task {i}", conversation=CONV, owner=OWNER)) for i in range(n))
        )
    hub = Hub(settings, agent=_InstantAgent(), channels={"bench": _Channel()})
    t0 = time.perf_counter()
    await hub.start()
    seconds = time.perf_counter() - t0
    await hub.stop()
    return {"startup_pending_tasks": n, "hub_start_s": round(seconds, 3)}


async def chat_latency(tmp: Path, background: int, latency: float, chats: int) -> dict[str, float]:
    script = LLMScript("echo", latency=latency)
    channel = _Channel()
    async with FakeOpenAI(script) as llm:
        providers = {"local": {"kind": "openai", "base_url": llm.base_url, "api_key": "sk-bench", "model": "m1"}}
        settings = _settings(tmp, providers=providers, agent={"provider": "local"})
        async with Hub(settings, channels={"bench": channel}) as hub:
            idle = [await channel.chat(f"idle{i}", "hello") for i in range(chats)]
            for i in range(background):
                await hub.tasks.submit(f"background {i}", conversation=CONV, owner=OWNER)
            await asyncio.sleep(latency / 2)  # the first background runs hold their slots
            queued = hub.sessions.pool.queued if hub.sessions else 0
            loaded = [await channel.chat(f"busy{i}", "hello") for i in range(chats)]
    idle_s, loaded_s = statistics.median(idle), statistics.median(loaded)
    return {
        "chat_idle_s": round(idle_s, 3),
        "chat_with_background_s": round(loaded_s, 3),
        "chat_ratio": round(loaded_s / idle_s, 3),
        "background_queued": queued,
    }


async def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--tasks", type=int, default=10_000, help="tasks submitted on the instant model")
    p.add_argument("--wave", type=int, default=100, help="submits at once")
    p.add_argument("--pending", type=int, default=10_000, help="pending tasks in the database at start-up")
    p.add_argument("--background", type=int, default=500, help="background tasks queued behind the chat")
    p.add_argument("--latency", type=float, default=1.0, help="the fake model's latency, seconds")
    p.add_argument("--chats", type=int, default=3, help="chat messages timed idle and loaded (median)")
    args = p.parse_args()
    # The fake server logs each request the stopping hub hangs up on (the background runs cut short).
    logging.getLogger("aiohttp.server").setLevel(logging.CRITICAL)
    figures: dict[str, Any] = {"tasks": args.tasks, "background": args.background, "latency_s": args.latency}
    with tempfile.TemporaryDirectory() as a, tempfile.TemporaryDirectory() as b, tempfile.TemporaryDirectory() as c:
        figures |= await throughput(Path(a), args.tasks, args.wave)
        print(
            f"{args.tasks} tasks on an instant model: submit p50 {figures['submit_p50_ms']} ms, "
            f"p99 {figures['submit_p99_ms']} ms; {figures['completed_tasks_per_s']} completed tasks/s",
            flush=True,
        )
        figures |= await startup(Path(b), args.pending)
        print(f"hub start-up with {args.pending} pending tasks: {figures['hub_start_s']} s", flush=True)
        figures |= await chat_latency(Path(c), args.background, args.latency, args.chats)
        print(
            f"chat answer on a {args.latency} s model: idle {figures['chat_idle_s']} s, with "
            f"{args.background} background tasks {figures['chat_with_background_s']} s "
            f"({figures['chat_ratio']}x; goal 1.2x)",
            flush=True,
        )
    emit(figures)


if __name__ == "__main__":
    asyncio.run(main())
