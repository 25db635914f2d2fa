"""Scheduler figures: start-up with 10,000 persisted jobs; firing delay of 1,000 jobs due at once.

    /work/venv/bin/python bench/scheduler.py [--jobs 10000] [--burst 1000]

Start-up is measured twice: ``Scheduler.start()`` alone (load + arm every job) and a whole
``Hub`` start on the same database. The firing delay is measured from each job's due time to
(a) its ``job`` inbound being published on the bus (committed first) and (b) the reply being
handed to the channel (session manager + outbox). The last line of output is one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

# Import from the repo root, not bench/ (as a script, bench/ is sys.path[0]: bench/telegram.py
# would shadow the python-telegram-bot package).
sys.path[0] = str(Path(__file__).resolve().parents[1])

from sqlalchemy import insert

from hub.app import Hub
from hub.bus import Bus
from hub.channel import Capabilities, Inbox
from hub.config import Settings
from hub.default_agent import EchoAgent
from hub.messages import ConversationRef, Delivery, Inbound, Outbound, Sender, utcnow
from hub.scheduler import Scheduler, SchedulerConfig
from hub.scheduler.timeparse import TriggerSpec, cron_spec, interval_spec
from hub.store import Store, jobs as sj


class _Channel:
    name = "bench"
    capabilities = Capabilities()
    problem: str | None = None

    def __init__(self) -> None:
        self.sent_at: dict[str, float] = {}
        self.done = asyncio.Event()
        self.expected = 0

    async def start(self, inbox: Inbox) -> None: ...
    async def stop(self) -> None: ...

    async def send(self, msg: Outbound) -> Delivery:
        if msg.final and not msg.typing:
            self.sent_at[msg.text] = time.time()
            if len(self.sent_at) >= self.expected:
                self.done.set()
        return Delivery(platform_ids=("x",))


def _settings(tmp: Path) -> Settings:
    return Settings.model_validate(
        {
            "hub": {"data_dir": str(tmp)},
            "server": {"enabled": False},
            "store": {"synchronous": "NORMAL"},
            "scheduler": {"max_jobs_per_user": 1_000_000, "min_interval_seconds": 0},
        }
    )


def _row(i: int, now: datetime) -> dict[str, Any]:
    spec: TriggerSpec
    if i % 3 == 0:
        spec = TriggerSpec(
            kind="date", args={"run_at": (now + timedelta(days=1, seconds=i)).isoformat()}, description="once"
        )
    elif i % 3 == 1:
        spec = interval_spec(3600 + i, now)
    else:
        spec = cron_spec(f"{i % 60} {i % 24} * * *", "Europe/Berlin")
    return {
        "id": f"b{i:05d}",
        "conversation_key": f"bench:c{i % 500}",
        "channel": "bench",
        "chat": f"c{i % 500}",
        "thread": None,
        "creator_id": f"u{i % 700}",
        "creator_name": "bench",
        "timezone": "Europe/Berlin",
        "description": f"job {i}",
        "action": "send",
        "text": f"job {i}",
        "trigger_kind": spec.kind,
        "trigger_args": json.dumps(spec.args),
        "next_run_at": now + timedelta(hours=1, seconds=i),
        "created_at": now,
        "active": True,
        "fire_count": 0,
    }


async def startup(tmp: Path, n: int) -> dict[str, float]:
    settings = _settings(tmp)
    now = utcnow()
    async with Store(settings.store_url, synchronous="NORMAL") as store:
        await store.run_write(sj.ensure_tables)
        rows = [_row(i, now) for i in range(n)]
        await store.run_write(lambda c: c.execute(insert(sj.jobs), rows))
    async with Store(settings.store_url, synchronous="NORMAL") as store:
        scheduler = Scheduler(store, Bus(), SchedulerConfig())
        t0 = time.perf_counter()
        armed = await scheduler.start()
        sched_s = time.perf_counter() - t0
        await scheduler.stop()
    assert armed == n, armed
    channel = _Channel()
    t0 = time.perf_counter()
    async with Hub(settings, agent=EchoAgent(), channels={"bench": channel}) as hub:
        hub_s = time.perf_counter() - t0
        assert len(hub.scheduler._armed) == n
    return {"startup_jobs": n, "scheduler_start_s": round(sched_s, 3), "hub_start_s": round(hub_s, 3)}


async def burst(tmp: Path, n: int) -> dict[str, float]:
    channel = _Channel()
    channel.expected = n
    async with Hub(_settings(tmp), agent=EchoAgent(), channels={"bench": channel}) as hub:
        scheduler: Scheduler = hub.scheduler
        published: dict[str, float] = {}
        sub = hub.bus.subscribe("inbound", filter=lambda m: isinstance(m, Inbound) and m.kind == "job")

        all_published = asyncio.Event()

        async def watch() -> None:
            async for m in sub:
                published[m.text] = time.time()
                if len(published) >= n:
                    all_published.set()

        watcher = asyncio.create_task(watch())
        # All due within one wall-clock second, 2 s from now (after the jobs are stored).
        second = datetime.fromtimestamp(int(time.time()) + 3, UTC)
        due = {f"burst {i}": second + timedelta(microseconds=int(i * 1_000_000 / n)) for i in range(n)}
        await asyncio.gather(
            *(
                scheduler.create(
                    conversation=ConversationRef(channel="bench", chat=f"c{i % 100}"),
                    creator=Sender(id=f"u{i % 100}", name="bench"),
                    trigger=TriggerSpec(kind="date", args={"run_at": t.isoformat()}, description="once"),
                    text=text,
                    timezone="UTC",
                )
                for i, (text, t) in enumerate(due.items())
            )
        )
        assert time.time() < second.timestamp(), "jobs were not all stored before they fell due"
        await asyncio.wait_for(all_published.wait(), 30)
        with contextlib.suppress(TimeoutError):  # delivery is the session manager's and outbox's part
            await asyncio.wait_for(channel.done.wait(), 15)
        watcher.cancel()
        pub = sorted((published[k] - t.timestamp()) * 1000 for k, t in due.items())
        sent = sorted((channel.sent_at[k] - t.timestamp()) * 1000 for k, t in due.items() if k in channel.sent_at)
        sent = sent or [float("nan")]
    return {
        "delivered_count": len(channel.sent_at),
        "burst_jobs": n,
        "publish_delay_p50_ms": round(statistics.median(pub), 1),
        "publish_delay_p99_ms": round(pub[int(len(pub) * 0.99) - 1], 1),
        "publish_delay_max_ms": round(pub[-1], 1),
        "delivered_delay_p50_ms": round(statistics.median(sent), 1),
        "delivered_delay_p99_ms": round(sent[int(len(sent) * 0.99) - 1], 1),
    }


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--burst", type=int, default=1_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as a, tempfile.TemporaryDirectory() as b:
        figures = await startup(Path(a), args.jobs)
        print(
            f"start-up with {args.jobs} jobs: scheduler {figures['scheduler_start_s']} s, "
            f"whole hub {figures['hub_start_s']} s"
        )
        fire = await burst(Path(b), args.burst)
        print(
            f"{args.burst} jobs due in one second: published p50 {fire['publish_delay_p50_ms']} ms, "
            f"p99 {fire['publish_delay_p99_ms']} ms; delivered p99 {fire['delivered_delay_p99_ms']} ms"
        )
    print(json.dumps({**figures, **fire}))


if __name__ == "__main__":
    asyncio.run(main())
