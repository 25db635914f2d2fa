from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path
from typing import Any

import pytest

from hub.agent import HistoryItem, Usage
from hub.app import Hub
from hub.config import sqlite_path
from hub.default_agent import EchoAgent
from hub.errors import HubLockedError, StoreError
from hub.messages import ConversationRef, Inbound, Outbound, Sender
from hub.store import MemoryStore, Store, StoreAPI, has_sql
from hub.store.codec import inbound_from_json, outbound_from_json, outbound_to_json
from tests.hub.conftest import RecordingChannel

CONV = ConversationRef(channel="t", chat="1", thread="th")


def inbound(pid: str, text: str = "hi") -> Inbound:
    return Inbound(kind="message", conversation=CONV, sender=Sender(id="u"), text=text, platform_id=pid)


@pytest.fixture
async def store(tmp_path: Path):
    async with Store(f"sqlite:///{tmp_path / 'db.sqlite'}") as s:
        yield s


async def test_record_inbound_dedupes_platform_redeliveries(store: Store) -> None:
    first = await store.record_inbound(inbound("42"))
    assert first is not None and first.id > 0
    assert await store.record_inbound(inbound("42")) is None
    results = await asyncio.gather(*(store.record_inbound(inbound(f"x{i % 5}")) for i in range(20)))
    assert sum(r is not None for r in results) == 5
    pending = await store.pending_inbound()
    assert [p.platform_id for p, _ in pending] == ["42", "x0", "x1", "x2", "x3", "x4"]
    assert pending[0][0].conversation == CONV


async def test_group_commit_batches_concurrent_writes(store: Store) -> None:
    before = store.write_stats.batches
    await asyncio.gather(*(store.record_inbound(inbound(f"g{i}")) for i in range(200)))
    assert store.write_stats.batches - before < 50  # many requests per transaction


async def test_write_stats_count_commits_and_their_time(store: Store) -> None:
    before = store.write_stats
    await asyncio.gather(*(store.record_inbound(inbound(f"w{i}")) for i in range(30)))
    after = store.write_stats
    assert after.batches > before.batches
    assert after.ops - before.ops >= 30  # each inbound is one op (a new conversation adds one)
    assert after.commit_seconds > before.commit_seconds
    after.ops = 0  # a copy: the store's counters are not the caller's to change
    assert store.write_stats.ops > 0


@pytest.mark.parametrize("synchronous", ["OFF", "FULL"])
async def test_the_wal_stays_bounded_under_continuous_writes(tmp_path: Path, synchronous: str) -> None:
    # A checkpoint from outside the writer never caught up while commits kept coming, so the
    # WAL only grew. With FULL the writer's autocheckpoint restarts it; with NORMAL/OFF the bulk
    # is copied in the background and the writer finishes each checkpoint itself.
    from hub.store._writer import WAL_CHECKPOINT_FRAMES

    rounds = 1200 if synchronous == "OFF" else 300  # FULL: an fsync per commit
    async with Store(f"sqlite:///{tmp_path / 'db.sqlite'}", synchronous=synchronous) as st:

        async def chat(k: int) -> None:
            for i in range(rounds):
                rec = await st.record_inbound(
                    Inbound(
                        kind="message",
                        sender=Sender(id="u"),
                        text="x" * 300,
                        platform_id=f"{k}-{i}",
                        conversation=ConversationRef(channel="t", chat=str(k)),
                    )
                )
                assert rec is not None
                await st.finish_run(
                    rec, reply=Outbound(conversation=rec.conversation, text="y" * 300, inbound_id=rec.id)
                )

        await asyncio.gather(*(chat(k) for k in range(4)))
        stats = st.write_stats
        wal = (tmp_path / "db.sqlite-wal").stat().st_size
    # ~3.5 pages a commit: without restarts the WAL would be ~2,000 (FULL) or ~8,000 pages. It
    # may pass the limit by what is committed while a checkpoint copies in the background.
    assert stats.batches >= rounds * 2
    if synchronous == "OFF":
        assert stats.checkpoints >= 4
    assert wal < 3 * WAL_CHECKPOINT_FRAMES * 4096 if synchronous == "OFF" else wal < 1.5 * WAL_CHECKPOINT_FRAMES * 4096


async def test_finish_run_is_atomic_and_pending_lists_follow(store: Store) -> None:
    rec = await store.record_inbound(inbound("1"))
    assert rec is not None
    out = Outbound(conversation=CONV, text="answer", inbound_id=rec.id)
    await store.finish_run(
        rec,
        reply=out,
        remember=[HistoryItem(kind="user", data={"t": "hi"})],
        usage=[("p", "m", Usage(input_tokens=10, output_tokens=3))],
    )
    assert await store.pending_inbound() == []
    assert [o.id for o in await store.pending_outbound()] == [out.id]
    await store.mark_sent(out.id, ["p1", "p2"])
    assert await store.pending_outbound() == []
    assert await store.outbox_status(out.id) == ("sent", "p1,p2")
    snap = await store.load_session(CONV.key)
    assert [h.data for h in snap.history] == [{"t": "hi"}]
    assert await store.conversation_usage(CONV.key) == (10, 3)


async def test_settings_and_state_round_trip(store: Store) -> None:
    assert await store.set_setting(CONV.key, "tz", "Europe/Berlin") == {"tz": "Europe/Berlin"}
    assert (await store.load_session(CONV.key)).settings == {"tz": "Europe/Berlin"}
    await store.state_set("k", "v1")
    await store.state_set("k", "v2")
    assert await store.state_get("k") == "v2"


async def test_concurrent_session_loads_share_a_query(store: Store) -> None:
    snaps = await asyncio.gather(*(store.load_session(f"t:{i}") for i in range(100)))
    assert all(s.history == [] for s in snaps)


async def test_a_second_store_on_the_same_database_is_refused(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    async with Store(url):
        with pytest.raises(HubLockedError, match="already running"):
            async with Store(url):
                pass
    async with Store(url):  # released on stop
        pass


async def test_unwritable_database_path_is_a_clear_error(tmp_path: Path) -> None:
    # (tests run as root, so permissions can't block us: a file in the way of the folder does)
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    with pytest.raises(StoreError, match="cannot create the database folder"):
        async with Store(f"sqlite:///{blocker / 'sub' / 'db.sqlite'}"):
            pass


@pytest.mark.parametrize(
    ("url", "path"),
    [
        ("sqlite:////srv/hub/autohands.db", "/srv/hub/autohands.db"),
        ("sqlite+pysqlite:////srv/hub/autohands.db?timeout=5", "/srv/hub/autohands.db"),
        ("sqlite:///relative.db", "relative.db"),
        ("sqlite:///:memory:", None),
        ("sqlite://", None),
        ("postgresql:///autohands", None),
        ("postgresql+psycopg://user:pw@db/autohands", None),
    ],
)
def test_the_file_of_a_database_url(url: str, path: str | None) -> None:
    # One reading for the store (where to lock, what to check) and the tools (what to hide).
    assert sqlite_path(url) == (Path(path) if path else None)


def test_the_lease_used_for_non_sqlite_databases(tmp_path: Path) -> None:
    from sqlalchemy import create_engine
    from sqlmodel import SQLModel

    from hub.store._lock import release_lease, take_lease

    engine = create_engine(f"sqlite:///{tmp_path / 'lease.db'}")
    SQLModel.metadata.create_all(engine)
    take_lease(engine, "hub-a")
    take_lease(engine, "hub-a")  # renewing one's own lease is fine
    with pytest.raises(HubLockedError, match="already running"):
        take_lease(engine, "hub-b")
    release_lease(engine, "hub-a")
    take_lease(engine, "hub-b")
    engine.dispose()


async def test_a_bad_write_fails_only_its_caller_and_the_batch_is_rolled_back(store: Store) -> None:
    first = await store.record_inbound(inbound("ok0"))
    assert first is not None
    # One commit: good inbounds, an answered mark, and a status the schema refuses (NOT NULL).
    results = await asyncio.gather(
        *(store.record_inbound(inbound(f"ok{i}")) for i in range(1, 4)),
        store.set_inbound_status(first.id, None),  # type: ignore[arg-type]
        store.set_inbound_status(first.id, "answered"),
        return_exceptions=True,
    )
    assert all(isinstance(r, Inbound) for r in results[:3])
    assert isinstance(results[3], StoreError) and results[3] is not None
    assert results[4] is None
    # Nothing half-written, no transaction left open: the store goes on writing.
    assert await store.record_inbound(inbound("ok9")) is not None
    pending = [p.platform_id for p, _ in await store.pending_inbound()]
    assert pending == ["ok1", "ok2", "ok3", "ok9"]


async def test_a_burst_is_committed_in_slices_that_never_split_a_unit(store: Store) -> None:
    from hub.store import _writer as w

    before = store.write_stats.batches
    results = await asyncio.gather(*(store.record_inbound(inbound(f"s{i}")) for i in range(w.MAX_BATCH_OPS)))
    assert all(r is not None for r in results)
    assert store.write_stats.batches - before >= 2, "a burst bigger than one slice takes several commits"

    writer = w.GroupCommitWriter.__new__(w.GroupCommitWriter)
    unit = [w._Op(0, "a"), *(w._Op(0, "b", joined=True) for _ in range(9))]
    writer._pending = [w._Op(0, "x") for _ in range(w.MAX_BATCH_OPS - 5)] + unit + [w._Op(0, "y")]
    first = writer._take_batch()
    assert len(first) == w.MAX_BATCH_OPS - 5 + len(unit)  # the unit straddling the cut stays whole
    assert [op.stmt for op in writer._pending] == ["y"]


def test_the_per_message_statements_bind_their_tuples_by_name_on_every_dialect() -> None:
    # SQLite takes the tuples as they are (their order is the statement's); a named paramstyle
    # (psycopg) gets each row as a dict, whose keys must be the statement's bind names.
    import re
    from concurrent.futures import ThreadPoolExecutor
    from types import SimpleNamespace

    from sqlalchemy.dialects import postgresql, sqlite

    import hub.store._writer as w

    with ThreadPoolExecutor(1) as pool:
        lite = w.GroupCommitWriter(None, None, pool, is_sqlite=True)  # type: ignore[arg-type]
        pg = w.GroupCommitWriter(None, None, pool, is_sqlite=False)  # type: ignore[arg-type]
        for stmt, keys in w._TUPLE_KEYS.items():
            sql, row = lite._hot_sql(SimpleNamespace(dialect=sqlite.dialect()), stmt, None)  # type: ignore[arg-type]
            assert row is None and sql.count("?") == len(keys)
            sql, row = pg._hot_sql(SimpleNamespace(dialect=postgresql.psycopg2.dialect()), stmt, None)  # type: ignore[arg-type]
            assert row is not None
            values = tuple(f"v{i}" for i in range(len(keys)))
            assert row(values) == dict(zip(keys, values, strict=True))
            assert set(re.findall(r"%\((\w+)\)s", sql)) == set(keys)


@pytest.mark.parametrize("kind", ["sqlite", "memory"])
async def test_recorded_inbound_is_the_same_message_with_its_id(tmp_path: Path, kind: str) -> None:
    """Both stores hand back an equal copy carrying the new id (benchmarks compare them)."""
    original = Inbound(
        kind="message",
        conversation=CONV,
        sender=Sender(id="u", name="Ann"),
        text="hi",
        platform_id="p1",
        mentioned=True,
        reply_to_platform_id="p1",
    )
    store: StoreAPI = Store(f"sqlite:///{tmp_path / 'db.sqlite'}") if kind == "sqlite" else MemoryStore()
    await store.start()
    try:
        recorded = await store.record_inbound(original)
        assert recorded is not None and recorded is not original and recorded.id > 0
        assert recorded == dataclasses.replace(original, id=recorded.id)
        assert original.id == 0
        assert await store.record_inbound(original) is None  # a redelivery
    finally:
        await store.stop()


def test_rows_written_before_the_field_renames_still_decode() -> None:
    """The stored keys stayed when the fields were renamed: ``r`` is ``reply_to_platform_id``
    (it was ``reply_to``) and ``i`` is ``inbound_id`` (it was ``in_reply_to``)."""
    old_inbound = (
        '{"k":"message","c":["t","1",null],"s":["u","Ann",null,false,false],"t":"hi","p":"p1",'
        '"at":"2024-05-01T12:00:00+00:00","r":"p1"}'
    )
    old_outbound = '{"c":["t","1",null],"t":"hello","id":"abc1","r":"p1","i":7}'
    assert inbound_from_json(old_inbound, row_id=7).reply_to_platform_id == "p1"
    out = outbound_from_json(old_outbound)
    assert (out.reply_to_platform_id, out.inbound_id) == ("p1", 7)
    assert outbound_from_json(outbound_to_json(out)) == out


async def test_the_store_is_injected_and_one_without_sql_means_no_scheduler(hub_settings: Any) -> None:
    """``Hub(settings)`` runs on the SQL store ``[store]`` configures, with the scheduler; on an
    injected ``MemoryStore`` (no tables for jobs) it answers as before, without one."""
    ch = RecordingChannel()
    async with Hub(hub_settings(), store=MemoryStore(), agent=EchoAgent(), channels={ch.name: ch}) as hub:
        assert not has_sql(hub.store) and hub.scheduler is None and "remind" not in hub.commands
        await ch.say("hi")
        [answer] = await ch.wait_sent(1)
        assert answer.text == "echo: hi" and answer.inbound_id > 0
    async with Hub(hub_settings(), agent=EchoAgent(), channels={"rec": RecordingChannel()}) as hub:
        assert isinstance(hub.store, Store) and has_sql(hub.store)
        assert hub.scheduler is not None and "remind" in hub.commands
