"""Core path throughput and latency: channel → inbox (store) → bus → session → instant agent →
outbox (store) → channel.send, with persistence on (SQLite, WAL) and off.

    python bench/core.py [--messages 20000] [--conversations 1000] [--rate 5000] [--repeat 3]
                        [--distinct 100000] [--cores 1] [--sweep 1000,2000,3000,4000]

Three measurements:
- throughput: ``--senders`` feeders push as fast as the inbox accepts (closed loop, the
  hub saturated): messages/s, ``--repeat`` runs alternating persistence on and off (the
  median run of each is reported, with every run's figure). Latency figures from these runs
  are queueing time, not service time.
- latency: messages offered at a fixed ``--rate`` for ``--seconds`` (open loop, like a busy
  platform), latency from the inbox call to ``channel.send``; for each SQLite ``synchronous``
  mode (FULL survives power loss, NORMAL an application crash; both survive SIGKILL),
  ``--repeat`` times (the run with the median p99 is reported, with every run's p99). Each run
  also prints where the time goes: CPU per message, and how often the store commits and how
  long each commit holds the event loop (with FULL, mostly the WAL's fsync).
- load sweep: one ``synchronous=FULL`` latency run at each of the ``--sweep`` rates, so the
  knee of the latency curve (where the event loop saturates) is visible next to the target rate.
- memory: RSS after ``--distinct`` conversations have each sent one message.

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

# Import from the repo root, not bench/ (as a script, bench/ is sys.path[0]: bench/telegram.py
# would shadow the python-telegram-bot package).
sys.path[0] = str(Path(__file__).resolve().parents[1])

from bench._common import current_rss_mb, emit, latency_figures, median_run, peak_rss_mb
from hub.app import Hub, tune_gc_for_serving
from hub.channel import Capabilities, Inbox
from hub.config import load_settings
from hub.default_agent import EchoAgent
from hub.messages import ConversationRef, Delivery, Inbound, Outbound, Sender
from hub.store import MemoryStore, Store


class BenchChannel:
    capabilities = Capabilities(max_length=100_000)
    problem: str | None = None

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
        t0 = self.started_at.pop(msg.reply_to_platform_id or "", None)
        if t0 is not None:
            self.latencies.append(time.perf_counter() - t0)
        if len(self.latencies) >= self.expected:
            self.done.set()
        return Delivery(platform_ids=("x",))


def _settings(data_dir: Path, synchronous: str = "FULL") -> object:
    return load_settings(
        environ={},
        overrides={
            "hub": {"data_dir": str(data_dir)},
            "server": {"enabled": False},
            "store": {"synchronous": synchronous},
            "sessions": {"max_concurrent_runs": 1000, "max_sessions_in_memory": 200_000},
        },
    )


async def at_rate(
    *, persist: bool, rate: int, seconds: float, conversations: int, data_dir: Path, synchronous: str = "FULL"
) -> dict[str, float]:
    """Offer ``rate`` messages/s for ``seconds`` (open loop) and measure each one's latency."""
    ch = BenchChannel()
    total = int(rate * seconds)
    settings = _settings(data_dir, synchronous)
    sql = Store.from_settings(settings) if persist else None  # only the SQL store counts its commits
    async with Hub(
        settings,
        store=sql or MemoryStore(),
        agent=EchoAgent(),  # type: ignore[arg-type]
        channels={"bench": ch},
    ):
        assert ch.inbox is not None
        inbox = ch.inbox
        tune_gc_for_serving()  # as `autohands run` does once started
        # Warm-up: every conversation speaks once first, so the run measures the steady state
        # rather than 1,000 sessions being created (and loaded from the store) in the same second.
        ch.expected = conversations
        now = time.perf_counter()
        ch.started_at.update({f"w{i}": now for i in range(conversations)})
        await asyncio.gather(
            *(
                inbox(
                    Inbound(
                        kind="message",
                        sender=Sender(id="u"),
                        text="hi",
                        platform_id=f"w{i}",
                        reply_to_platform_id=f"w{i}",
                        conversation=ConversationRef(channel="bench", chat=f"c{i}"),
                    )
                )
                for i in range(conversations)
            )
        )
        await asyncio.wait_for(ch.done.wait(), 120)
        ch.latencies.clear()
        ch.done.clear()
        ch.expected = total
        pending: set[asyncio.Task[bool]] = set()
        sent = 0
        loop = asyncio.get_running_loop()
        before = sql.write_stats if sql else None
        cpu0 = time.process_time()
        t0 = loop.time()
        while sent < total:
            due = min(total, int((loop.time() - t0) * rate) + 1)
            while sent < due:
                pid = f"r{sent}"
                ch.started_at[pid] = time.perf_counter()
                task = asyncio.create_task(
                    inbox(
                        Inbound(
                            kind="message",
                            sender=Sender(id="u"),
                            text="hi",
                            platform_id=pid,
                            reply_to_platform_id=pid,
                            conversation=ConversationRef(channel="bench", chat=f"c{sent % conversations}"),
                        )
                    )
                )
                pending.add(task)
                task.add_done_callback(pending.discard)
                sent += 1
            await asyncio.sleep(0.0005)
        await asyncio.wait_for(ch.done.wait(), 120)
        wall = loop.time() - t0
        cpu = time.process_time() - cpu0
        after = sql.write_stats if sql else None
    figures: dict[str, float] = {
        "offered_msgs_per_s": rate,
        "achieved_msgs_per_s": round(total / wall, 1),
        **latency_figures("", ch.latencies),
        "cpu_us_per_msg": round(cpu / total * 1e6, 1),
    }
    if before is not None and after is not None and (commits := after.batches - before.batches):
        # Where the time goes: a message waits for two commits (its inbound, then its reply),
        # and a SQLite commit holds the event loop for its fsync.
        busy = after.commit_seconds - before.commit_seconds
        figures.update(
            {
                "commits_per_s": round(commits / wall, 1),
                "ops_per_commit": round((after.ops - before.ops) / commits, 1),
                "commit_mean_ms": round(busy / commits * 1000, 3),
                "commit_share_of_wall": round(busy / wall, 3),
                "slow_commits": after.slow_commits - before.slow_commits,
                # NORMAL/OFF: checkpoints whose bulk ran off the loop (FULL: SQLite's own)
                "checkpoints": after.checkpoints - before.checkpoints,
                "checkpoint_loop_ms": round((after.checkpoint_loop_seconds - before.checkpoint_loop_seconds) * 1000, 2),
            }
        )
    return figures


async def run_once(
    *, persist: bool, messages: int, conversations: int, senders: int, data_dir: Path
) -> dict[str, float]:
    settings = _settings(data_dir)
    ch = BenchChannel()
    ch.expected = messages
    store = Store.from_settings(settings) if persist else MemoryStore()
    async with Hub(settings, store=store, agent=EchoAgent(), channels={"bench": ch}):
        assert ch.inbox is not None
        inbox = ch.inbox
        per_sender = messages // senders

        async def sender(k: int) -> None:
            for j in range(per_sender):
                n = k * per_sender + j
                pid = f"m{n}"
                ch.started_at[pid] = time.perf_counter()
                await inbox(
                    Inbound(
                        kind="message",
                        sender=Sender(id="u"),
                        text="hi",
                        platform_id=pid,
                        reply_to_platform_id=pid,
                        conversation=ConversationRef(channel="bench", chat=f"c{n % conversations}"),
                    )
                )

        t0 = time.perf_counter()
        await asyncio.gather(*(sender(k) for k in range(senders)))
        await asyncio.wait_for(ch.done.wait(), 600)
        elapsed = time.perf_counter() - t0
    return {"msgs_per_s": round(messages / elapsed, 1), **latency_figures("", ch.latencies)}


async def distinct_conversations(n: int, data_dir: Path) -> dict[str, float]:
    settings = load_settings(
        environ={},
        overrides={
            "hub": {"data_dir": str(data_dir)},
            "server": {"enabled": False},
            "sessions": {"max_concurrent_runs": 100},
        },
    )
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
                await inbox(
                    Inbound(
                        kind="message",
                        sender=Sender(id=f"u{i}"),
                        text="hi",
                        platform_id=f"d{i}",
                        reply_to_platform_id=f"d{i}",
                        conversation=ConversationRef(channel="bench", chat=f"dc{i}"),
                    )
                )

        t0 = time.perf_counter()
        for start in range(0, n, 5000):
            await asyncio.gather(*(one(i) for i in range(start, min(n, start + 5000))))
        await asyncio.wait_for(ch.done.wait(), 900)
        elapsed = time.perf_counter() - t0
        gc.collect()
        sessions_in_memory = len(hub.sessions.sessions) if hub.sessions else 0
        after = current_rss_mb()
    return {
        "distinct_conversations": n,
        "distinct_msgs_per_s": round(n / elapsed, 1),
        "rss_before_mb": before,
        "rss_after_distinct_mb": after,
        "sessions_in_memory": sessions_in_memory,
    }


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--messages", type=int, default=20_000)
    p.add_argument("--conversations", type=int, default=1_000)
    p.add_argument("--senders", type=int, default=200, help="concurrent feeders (like many chats at once)")
    p.add_argument("--rate", type=int, default=5_000, help="offered messages/s for the latency run")
    p.add_argument("--seconds", type=float, default=3.0, help="length of the latency run")
    p.add_argument(
        "--repeat",
        type=int,
        default=3,
        help="throughput runs, and latency runs per synchronous mode (medians reported)",
    )
    p.add_argument(
        "--sweep",
        default="1000,2000,3000,4000",
        help="comma-separated rates for one FULL latency run each ('' to skip)",
    )
    p.add_argument("--distinct", type=int, default=100_000)
    p.add_argument("--cores", type=int, default=1, help="pin the process to this many cores (0: no pinning)")
    args = p.parse_args()
    if args.cores and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, set(sorted(os.sched_getaffinity(0))[: args.cores]))
    figures: dict[str, float | int | str] = {
        "cores": args.cores or os.cpu_count() or 0,
        "messages": args.messages,
        "conversations": args.conversations,
    }
    with tempfile.TemporaryDirectory() as tmp:
        # Closed-loop runs alternate on/off so a slow stretch of the machine hits both alike;
        # the median run of each stands for it, and every run is kept.
        on_runs: list[dict[str, float]] = []
        off_runs: list[dict[str, float]] = []
        for i in range(args.repeat):
            for persist, runs in ((True, on_runs), (False, off_runs)):
                runs.append(
                    asyncio.run(
                        run_once(
                            persist=persist,
                            messages=args.messages,
                            conversations=args.conversations,
                            senders=args.senders,
                            data_dir=Path(tmp) / f"{'on' if persist else 'off'}-{i}",
                        )
                    )
                )
        on, off = median_run(on_runs, "msgs_per_s"), median_run(off_runs, "msgs_per_s")
        for label, run, runs in (("on ", on, on_runs), ("off", off, off_runs)):
            each = ", ".join(f"{r['msgs_per_s']:.0f}" for r in runs)
            print(
                f"persistence {label}: {run['msgs_per_s']:.0f} msg/s  p50 {run['p50_ms']} ms  "
                f"p99 {run['p99_ms']} ms  (runs: {each})"
            )
        figures.update({f"persist_{k}": v for k, v in on.items()})
        figures.update({f"memory_{k}": v for k, v in off.items()})
        figures["persist_msgs_per_s_runs"] = [r["msgs_per_s"] for r in on_runs]  # type: ignore[assignment]
        figures["memory_msgs_per_s_runs"] = [r["msgs_per_s"] for r in off_runs]  # type: ignore[assignment]
        figures["durability_cost_ratio"] = round(off["msgs_per_s"] / on["msgs_per_s"], 2)
        for mode in ("FULL", "NORMAL"):
            runs = [
                asyncio.run(
                    at_rate(
                        persist=True,
                        rate=args.rate,
                        seconds=args.seconds,
                        conversations=args.conversations,
                        data_dir=Path(tmp) / f"rate-{mode}-{i}",
                        synchronous=mode,
                    )
                )
                for i in range(args.repeat)
            ]
            for lat in runs:
                print(
                    f"at {args.rate}/s, synchronous={mode}: p50 {lat['p50_ms']} ms  p99 {lat['p99_ms']} ms "
                    f"(achieved {lat['achieved_msgs_per_s']:.0f}/s, {lat['cpu_us_per_msg']} us CPU/msg, "
                    f"{lat.get('commits_per_s', 0):.0f} commits/s of {lat.get('commit_mean_ms', 0)} ms: "
                    f"{lat.get('commit_share_of_wall', 0):.0%} of the time)"
                )
            # The run with the median p99 stands for the mode; every run's p99 is kept too.
            figures.update({f"rate_{mode.lower()}_{k}": v for k, v in median_run(runs, "p99_ms").items()})
            figures[f"rate_{mode.lower()}_p99_runs_ms"] = sorted(r["p99_ms"] for r in runs)  # type: ignore[assignment]
        lat = asyncio.run(
            at_rate(
                persist=False,
                rate=args.rate,
                seconds=args.seconds,
                conversations=args.conversations,
                data_dir=Path(tmp) / "rate-mem",
            )
        )
        print(f"at {args.rate}/s, persistence off: p50 {lat['p50_ms']} ms  p99 {lat['p99_ms']} ms")
        figures.update({f"rate_memory_{k}": v for k, v in lat.items()})
        for rate in (int(r) for r in args.sweep.split(",") if r.strip()):
            lat = asyncio.run(
                at_rate(
                    persist=True,
                    rate=rate,
                    seconds=args.seconds,
                    conversations=args.conversations,
                    data_dir=Path(tmp) / f"sweep-{rate}",
                    synchronous="FULL",
                )
            )
            print(
                f"sweep at {rate}/s, synchronous=FULL: p50 {lat['p50_ms']} ms  p99 {lat['p99_ms']} ms "
                f"({lat['cpu_us_per_msg']} us CPU/msg, {lat.get('commits_per_s', 0):.0f} commits/s, "
                f"{lat.get('slow_commits', 0)} over 2 ms)"
            )
            figures[f"sweep_{rate}_p50_ms"] = lat["p50_ms"]
            figures[f"sweep_{rate}_p99_ms"] = lat["p99_ms"]
        if args.distinct:
            d = asyncio.run(distinct_conversations(args.distinct, Path(tmp) / "distinct"))
            print(
                f"{args.distinct} distinct conversations: RSS {d['rss_after_distinct_mb']} MB "
                f"({d['sessions_in_memory']} sessions in memory)"
            )
            figures.update(d)
    figures["peak_rss_mb"] = peak_rss_mb()
    emit(figures)


if __name__ == "__main__":
    main()
