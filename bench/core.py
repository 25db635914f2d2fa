"""Core path throughput and latency: channel → inbox (store) → bus → session → instant agent →
outbox (store) → channel.send, with persistence on (SQLite, WAL, synchronous=FULL) and off.

    python bench/core.py [--messages 20000] [--conversations 1000] [--distinct 100000] [--cores 1]

Prints human-readable lines, then one JSON line of figures.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import current_rss_mb, emit, latency_figures, peak_rss_mb
from hub.app import Hub
from hub.config import load_settings
from hub.default_agent import EchoAgent
from hub.messages import ConversationRef, Delivery, Inbound, Outbound, Sender
from hub.plugins import Capabilities, Inbox


class BenchChannel:
    capabilities = Capabilities(max_length=100_000)

    def __init__(self) -> None:
        self.name = "bench"
        self.inbox: Inbox | None = None
        self.started_at: dict[str, float] = {}
        self.latencies: list[float] = []
        self.done = asyncio.Event()
        self.expected = 0

    async def start(self, inbox: Inbox) -> None:
        self.inbox = inbox

    async def stop(self) -> None: ...

    async def send(self, msg: Outbound) -> Delivery:
        t0 = self.started_at.pop(msg.reply_to or "", None)
        if t0 is not None:
            self.latencies.append(time.perf_counter() - t0)
        if len(self.latencies) >= self.expected:
            self.done.set()
        return Delivery(platform_ids=("x",))


async def run_once(*, persist: bool, messages: int, conversations: int, senders: int,
                   data_dir: Path) -> dict[str, float]:
    settings = load_settings(environ={}, overrides={
        "hub": {"data_dir": str(data_dir)}, "server": {"enabled": False},
        "sessions": {"max_concurrent_runs": 1000, "max_sessions_in_memory": 200_000}})
    ch = BenchChannel()
    ch.expected = messages
    async with Hub(settings, persist=persist, agent=EchoAgent(), channels={"bench": ch}):
        assert ch.inbox is not None
        inbox = ch.inbox
        per_sender = messages // senders

        async def sender(k: int) -> None:
            for j in range(per_sender):
                n = k * per_sender + j
                pid = f"m{n}"
                ch.started_at[pid] = time.perf_counter()
                await inbox(Inbound(kind="message", sender=Sender(id="u"), text="hi", platform_id=pid, reply_to=pid,
                                    conversation=ConversationRef(channel="bench", chat=f"c{n % conversations}")))

        t0 = time.perf_counter()
        await asyncio.gather(*(sender(k) for k in range(senders)))
        await asyncio.wait_for(ch.done.wait(), 600)
        elapsed = time.perf_counter() - t0
    return {"msgs_per_s": round(messages / elapsed, 1), **latency_figures("", ch.latencies)}


async def distinct_conversations(n: int, data_dir: Path) -> dict[str, float]:
    settings = load_settings(environ={}, overrides={
        "hub": {"data_dir": str(data_dir)}, "server": {"enabled": False},
        "sessions": {"max_concurrent_runs": 100}})
    ch = BenchChannel()
    ch.expected = n
    gc.collect()
    before = current_rss_mb()
    async with Hub(settings, agent=EchoAgent(), channels={"bench": ch}) as hub:
        assert ch.inbox is not None
        inbox = ch.inbox
        sem = asyncio.Semaphore(256)

        async def one(i: int) -> None:
            async with sem:
                ch.started_at[f"d{i}"] = time.perf_counter()
                await inbox(Inbound(kind="message", sender=Sender(id=f"u{i}"), text="hi", platform_id=f"d{i}",
                                    reply_to=f"d{i}", conversation=ConversationRef(channel="bench", chat=f"dc{i}")))

        t0 = time.perf_counter()
        for start in range(0, n, 5000):
            await asyncio.gather(*(one(i) for i in range(start, min(n, start + 5000))))
        await asyncio.wait_for(ch.done.wait(), 900)
        elapsed = time.perf_counter() - t0
        gc.collect()
        sessions_in_memory = len(hub.sessions.sessions) if hub.sessions else 0
        after = current_rss_mb()
    return {"distinct_conversations": n, "distinct_msgs_per_s": round(n / elapsed, 1),
            "rss_before_mb": before, "rss_after_distinct_mb": after,
            "sessions_in_memory": sessions_in_memory}


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--messages", type=int, default=20_000)
    p.add_argument("--conversations", type=int, default=1_000)
    p.add_argument("--senders", type=int, default=200, help="concurrent feeders (like many chats at once)")
    p.add_argument("--distinct", type=int, default=100_000)
    p.add_argument("--cores", type=int, default=1, help="pin the process to this many cores (0: no pinning)")
    args = p.parse_args()
    if args.cores and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, set(sorted(os.sched_getaffinity(0))[: args.cores]))
    figures: dict[str, float | int | str] = {"cores": args.cores or os.cpu_count() or 0,
                                             "messages": args.messages, "conversations": args.conversations}
    with tempfile.TemporaryDirectory() as tmp:
        on = asyncio.run(run_once(persist=True, messages=args.messages, conversations=args.conversations,
                                  senders=args.senders, data_dir=Path(tmp) / "on"))
        print(f"persistence on : {on['msgs_per_s']:.0f} msg/s  p50 {on['p50_ms']} ms  p99 {on['p99_ms']} ms")
        off = asyncio.run(run_once(persist=False, messages=args.messages, conversations=args.conversations,
                                   senders=args.senders, data_dir=Path(tmp) / "off"))
        print(f"persistence off: {off['msgs_per_s']:.0f} msg/s  p50 {off['p50_ms']} ms  p99 {off['p99_ms']} ms")
        figures.update({f"persist_{k}": v for k, v in on.items()})
        figures.update({f"memory_{k}": v for k, v in off.items()})
        figures["durability_cost_ratio"] = round(off["msgs_per_s"] / on["msgs_per_s"], 2)
        if args.distinct:
            d = asyncio.run(distinct_conversations(args.distinct, Path(tmp) / "distinct"))
            print(f"{args.distinct} distinct conversations: RSS {d['rss_after_distinct_mb']} MB "
                  f"({d['sessions_in_memory']} sessions in memory)")
            figures.update(d)
    figures["peak_rss_mb"] = peak_rss_mb()
    emit(figures)


if __name__ == "__main__":
    main()
