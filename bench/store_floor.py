"""The latency floor the disk sets for the hub's durability contract, with no hub around it.

    python bench/store_floor.py [--rate 5000] [--seconds 4] [--repeat 3]
                                [--synchronous FULL,NORMAL] [--work-us 0,60,110] [--cores 1]

Messages are offered at a fixed ``--rate`` (open loop) to bare ``sqlite3`` on the hub's own
schema and statements, in the hub's commit pattern: one writer group-commits everything
pending; a message's inbound row is committed first, then (in a later commit) its reply goes
into the outbox with the inbound marked answered, and the commit after that marks the reply
sent. A message's latency runs from its arrival to the commit of its reply: two durable
commits in a row, as in the hub (``bench/core.py``), and nothing else.

``--work-us`` adds a fixed CPU cost per message, spent on the same thread before each commit:
a model of the hub's own work (routing, the agent run, delivery: ~60-115 µs on the development
VM with persistence off; compare the CPU per message each run prints with bench/core.py's).
With 0 the figures are the disk's floor: no implementation of this
contract on this machine and this synchronous mode can have a lower p99. Each run prints
p50/p99/max, commits per second and how many commits took over 2 ms.

Prints human-readable lines, then one JSON line of figures.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

# Import from the repo root, not bench/ (as a script, bench/ is sys.path[0]).
sys.path[0] = str(Path(__file__).resolve().parents[1])

from bench._common import emit, latency_figures, median_run
from hub.config import default_sqlite_url
from hub.messages import ConversationRef, Inbound, Outbound, Sender
from hub.store import Store
from hub.store._writer import INBOUND_KEYS, OUTBOX_KEYS
from hub.store.codec import inbound_to_json, outbound_to_json

SLOW_COMMIT_SECONDS = 0.002
TIMESTAMP = "2026-01-01 00:00:00.000000"  # SQLAlchemy's SQLite text form, as the hub writes it


def _create_schema(data_dir: Path) -> Path:
    """The hub's own tables and indexes, created by the hub's store (WAL persists in the file)."""

    async def create() -> None:
        async with Store(default_sqlite_url(data_dir), lock=False):
            pass

    asyncio.run(create())
    return data_dir / "autohands.db"


def _spin(seconds: float) -> None:
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


def floor_run(*, path: Path, synchronous: str, rate: int, seconds: float, work_us: float) -> dict[str, float]:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute(f"PRAGMA synchronous={synchronous}")
    conv = ConversationRef(channel="bench", chat="c0")
    payload_in = inbound_to_json(
        Inbound(
            kind="message",
            conversation=conv,
            sender=Sender(id="u"),
            text="hi",
            platform_id="r0",
            reply_to_platform_id="r0",
        )
    )
    payload_out = outbound_to_json(Outbound(conversation=conv, text="hi", reply_to_platform_id="r0", inbound_id=1))
    insert_inbound = (
        f"INSERT INTO messages ({', '.join(INBOUND_KEYS)}) VALUES ({', '.join('?' * len(INBOUND_KEYS))})"
        " ON CONFLICT (channel, platform_id) DO NOTHING"
    )
    insert_outbox = (
        f"INSERT INTO outbox ({', '.join(OUTBOX_KEYS)}) VALUES ({', '.join('?' * len(OUTBOX_KEYS))})"
        " ON CONFLICT (id) DO NOTHING"
    )
    set_status = "UPDATE messages SET status = ?, updated_at = ? WHERE id = ?"
    set_sent = (
        "UPDATE outbox SET status = ?, platform_ids = ?, error = ?, sent_at = ?, attempts = attempts + 1 WHERE id = ?"
    )
    total = int(rate * seconds)
    latencies: list[float] = []
    arrived = commits = slow = 0
    to_reply: list[int] = []
    to_mark: list[int] = []
    cpu0 = time.process_time()
    t0 = time.perf_counter()
    while len(latencies) < total:
        now = time.perf_counter()
        due = min(total, int((now - t0) * rate) + 1)
        new = list(range(arrived, due))
        arrived = due
        if not new and not to_reply and not to_mark:
            time.sleep(max(0.0, t0 + arrived / rate - now))
            continue
        if work_us:
            _spin(work_us * len(new) / 1e6)
        conn.execute("BEGIN IMMEDIATE")
        if new:
            conn.executemany(
                insert_inbound,
                [
                    (
                        i + 1,
                        "bench",
                        f"r{i}",
                        f"bench:c{i % 1000}",
                        "message",
                        payload_in,
                        "received",
                        0,
                        TIMESTAMP,
                        TIMESTAMP,
                    )
                    for i in new
                ],
            )
        replying, to_reply = to_reply, new
        if replying:
            conn.executemany(
                insert_outbox,
                [
                    (f"o{i}", "bench", f"bench:c{i % 1000}", i + 1, payload_out, "pending", "", 0, "", TIMESTAMP, None)
                    for i in replying
                ],
            )
            conn.executemany(set_status, [("answered", TIMESTAMP, i + 1) for i in replying])
        if to_mark:
            conn.executemany(set_sent, [("sent", "x", "", TIMESTAMP, f"o{i}") for i in to_mark])
        started = time.perf_counter()
        conn.execute("COMMIT")
        done = time.perf_counter()
        commits += 1
        slow += done - started >= SLOW_COMMIT_SECONDS
        latencies.extend(done - (t0 + i / rate) for i in replying)
        to_mark = replying
    wall = time.perf_counter() - t0
    cpu = time.process_time() - cpu0
    conn.close()
    return {
        **latency_figures("", latencies),
        "max_ms": round(max(latencies) * 1000, 3),
        "cpu_us_per_msg": round(cpu / total * 1e6, 1),
        "commits_per_s": round(commits / wall, 1),
        "slow_commits": slow,
    }


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--rate", type=int, default=5_000, help="offered messages/s")
    p.add_argument("--seconds", type=float, default=4.0, help="length of each run")
    p.add_argument("--repeat", type=int, default=3, help="runs per setting (the median p99 is reported)")
    p.add_argument("--synchronous", default="FULL,NORMAL", help="comma-separated SQLite synchronous modes")
    p.add_argument("--work-us", default="0,60,110", help="comma-separated CPU µs per message to model the hub's work")
    p.add_argument("--cores", type=int, default=1, help="pin the process to this many cores (0: no pinning)")
    args = p.parse_args()
    if args.cores and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, set(sorted(os.sched_getaffinity(0))[: args.cores]))
    figures: dict[str, object] = {"cores": args.cores or os.cpu_count() or 0, "rate": args.rate}
    with tempfile.TemporaryDirectory() as tmp:
        for mode in (m.strip().upper() for m in args.synchronous.split(",") if m.strip()):
            for work in (float(w) for w in args.work_us.split(",") if w.strip()):
                runs = []
                for i in range(args.repeat):
                    path = _create_schema(Path(tmp) / f"{mode}-{work:g}-{i}")
                    run = floor_run(path=path, synchronous=mode, rate=args.rate, seconds=args.seconds, work_us=work)
                    print(
                        f"{mode}, {work:g} µs of work per message, {args.rate}/s: p50 {run['p50_ms']} ms  "
                        f"p99 {run['p99_ms']} ms  max {run['max_ms']} ms ({run['cpu_us_per_msg']} us CPU/msg, "
                        f"{run['commits_per_s']:.0f} commits/s, "
                        f"{run['slow_commits']} over 2 ms)"
                    )
                    runs.append(run)
                name = f"{mode.lower()}_work{work:g}"
                figures.update({f"{name}_{k}": v for k, v in median_run(runs, "p99_ms").items()})
                figures[f"{name}_p99_runs_ms"] = sorted(r["p99_ms"] for r in runs)
    emit(figures)


if __name__ == "__main__":
    main()
