"""The store's single writer: group commits.

Every write request queued while a transaction runs goes into the next transaction; requests
of the same statement run as one ``executemany`` in a fixed order (inserts before updates), and
callers await a future resolved after the commit, so "recorded" means "committed".
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from operator import itemgetter
from typing import Any, Literal, TypeVar, overload

from sqlalchemy import Connection, Engine, insert, literal_column, select, update

from ..messages import utcnow
from ._rows import _as_store_error, _bp, _insert_ignore, _sqlite_ts, _timed
from .base import WriteStats
from .tables import (
    CONVERSATIONS as _conversations,
    HISTORY as _history,
    MESSAGES as _messages,
    OUTBOX as _outbox,
    USAGE as _usage,
)

T = TypeVar("T")
log = logging.getLogger("hub.store")


INLINE_COMMIT_MAX_SECONDS = 0.002
"""Commits (fsyncs) faster than this, on average, run on the event loop; slower ones in a thread."""
MAX_BATCH_OPS = 256
"""Ops per group commit, at most. A burst (a restart's backlog, a thousand chats writing at
once) is committed in slices, and each slice's callers go on before the next one is written:
the first message of a burst waits for one slice, not for the whole burst."""
WAL_CHECKPOINT_FRAMES = 1000
"""A checkpoint starts once the WAL holds about this many frames (SQLite's autocheckpoint
default). Counted as an estimate (3 pages a commit plus one per 4 statements' rows, checked
against SQLite's own count: docs/ARCHITECTURE.md, "Store: measured"): Python's sqlite3 does not
expose the WAL hook that reports the real figure."""
BURST_PAUSE_ROUNDS = 8
"""Event-loop rounds between two slices of a burst. What a slice releases (model requests:
connect, send, each step one round) moves one step per round, behind everything else ready;
releasing the next slice at once put its CPU work ahead of those steps, and the requests of a
1,000-conversation burst left only once the whole burst had been admitted (measured with
bench/agent.py: docs/ARCHITECTURE.md, "Store: measured"). Plain load never fills a slice: no
pause then."""

# The per-message statements take their values as tuples in these orders (the tables' column
# order, which is SQLite's parameter order): no dict per row to build and then unpack.
INBOUND_KEYS = (
    "id",
    "channel",
    "platform_id",
    "conversation_key",
    "kind",
    "payload",
    "status",
    "attempts",
    "created_at",
    "updated_at",
)
OUTBOX_KEYS = (
    "id",
    "channel",
    "conversation_key",
    "inbound_id",
    "payload",
    "status",
    "platform_ids",
    "attempts",
    "error",
    "created_at",
    "sent_at",
)
STATUS_KEYS = ("status", "at", "mid")
START_KEYS = ("at", "mid")
OUTSTATUS_KEYS = ("status", "pids", "err", "sent_at", "oid")
_TUPLE_KEYS = {
    "insert_inbound": INBOUND_KEYS,
    "insert_outbox": OUTBOX_KEYS,
    "set_status": STATUS_KEYS,
    "set_outbox": OUTSTATUS_KEYS,
    "start_run": START_KEYS,
}

# Phases fix the order inside one group commit: rows are inserted before they are updated.
# Runs' starts have their own phase so that, under load, they are one executemany, not
# interleaved with the answered marks of the same commit.
_P_CONV, _P_INBOUND, _P_OUTBOX, _P_HISTORY, _P_USAGE, _P_STATUS, _P_START, _P_OUTSTATUS, _P_FN = range(9)


NOT_RUNNING = "Store is not running"
"""What using the store before ``start`` or after ``stop`` raises (``RuntimeError``)."""


@dataclass(slots=True)
class _Op:
    phase: int
    stmt: str
    params: Any = None
    """A dict, or for the statements of ``_TUPLE_KEYS`` a tuple in that order."""
    fn: Callable[[Connection], Any] | None = None
    future: asyncio.Future[Any] | None = None
    result: Any = None
    joined: bool = False
    """Commit in the same transaction as the op queued just before (a slice never ends here)."""


class GroupCommitWriter:
    """Owns the write connection's transactions. ``start()`` then ``submit()``; ``close()`` drains."""

    def __init__(
        self,
        engine: Engine,
        conn: Connection | None,
        pool: ThreadPoolExecutor,
        *,
        is_sqlite: bool,
        checkpoint: Callable[[], Awaitable[Any]] | None = None,
    ) -> None:
        self._engine = engine
        self._wconn = conn
        """SQLite's writer connection, used on the loop; None: transactions run in ``pool``."""
        self._write_pool = pool
        self._is_sqlite = is_sqlite
        self._pending: list[_Op] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self._hot: dict[str, tuple[str, Callable[[Any], Any] | None]] = {}
        self._cursor: Any = None
        """SQLite: the writer connection's own DBAPI cursor, so the hot statements skip
        SQLAlchemy's per-call execution machinery on the hot path."""
        self._stamp: Any = None
        self._stamp_at = float("-inf")
        self._commit_avg_seconds = 0.0
        self._background_checkpoint = checkpoint
        """SQLite file: runs a PASSIVE checkpoint on another connection, off the loop."""
        self._checkpoint_run: asyncio.Future[Any] | None = None
        self._wal_frames = 0
        self.stats = WriteStats()

    def stamp(self) -> Any:
        """The time to write into rows queued now, in the form the raw ``executemany`` wants
        (SQLAlchemy's SQLite text format, else a datetime). Read at most once a millisecond: a
        message writes it several times, and formatting it costs more than the row's insert."""
        t = time.monotonic()
        if t - self._stamp_at >= 0.001:
            self._stamp_at = t
            now = utcnow()
            self._stamp = _sqlite_ts(now) if self._is_sqlite else now
        return self._stamp

    def start(self) -> None:
        self._task = asyncio.create_task(self._write_loop(), name="store-writer")

    async def close(self) -> None:
        self._closing = True
        self._wake.set()
        if self._task is not None:
            await self._task
        if (run := self._checkpoint_run) is not None:
            self._checkpoint_run = None
            await asyncio.wait([run])
            _log_failure(run)

    async def _in_writer(self, fn: Callable[[], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._write_pool, fn)

    @overload
    def submit(self, op: _Op, *, wait: Literal[True] = ...) -> asyncio.Future[Any]: ...
    @overload
    def submit(self, op: _Op, *, wait: Literal[False]) -> None: ...
    @overload
    def submit(self, op: _Op, *, wait: bool) -> asyncio.Future[Any] | None: ...
    def submit(self, op: _Op, *, wait: bool = True) -> asyncio.Future[Any] | None:
        """Queue ``op`` for the next group commit; with ``wait``, a future resolved after it."""
        if self._task is None or self._closing:
            raise RuntimeError(NOT_RUNNING)
        if wait:
            op.future = asyncio.get_running_loop().create_future()
        self._pending.append(op)
        self._wake.set()
        return op.future

    async def _write_loop(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            if not self._pending:
                if self._closing:
                    return
                continue
            batch = self._take_batch()
            sliced = bool(self._pending)
            try:
                await self._commit_batch(batch)
                self.stats.batches += 1
                self.stats.ops += len(batch)
                for op in batch:
                    if op.future is not None and not op.future.done():
                        op.future.set_result(op.result)
            except Exception:
                # Isolate the failing request: commit each alone so one bad row fails one caller.
                for op in batch:
                    try:
                        await self._commit_batch([op])
                        if op.future is not None and not op.future.done():
                            op.future.set_result(op.result)
                    except Exception as exc:
                        if op.future is not None and not op.future.done():
                            op.future.set_exception(_as_store_error(exc))
                        else:
                            log.error("store write %s failed: %s", op.stmt, exc)
            if self._background_checkpoint is not None:
                self._keep_wal_short(len(batch), self._background_checkpoint)
            if self._pending:
                self._wake.set()
                # Let this slice's callers run before the next commit; in a burst, a few rounds.
                for _ in range(BURST_PAUSE_ROUNDS if sliced else 1):
                    await asyncio.sleep(0)

    def _keep_wal_short(self, ops: int, background_checkpoint: Callable[[], Awaitable[Any]]) -> None:
        """Checkpoint in two steps so the loop never waits for the bulk of one (a SQLite file
        with ``synchronous`` NORMAL or OFF; FULL keeps SQLite's autocheckpoint, see
        ``hub.store.sql.WAL_AUTOCHECKPOINT_PAGES``).

        SQLite's own autocheckpoint runs inside the commit that passes the limit: it copies the
        WAL's pages and syncs the database file on the event loop, several milliseconds each
        time under load (docs/ARCHITECTURE.md, "Store: measured"). Here a PASSIVE checkpoint on
        another connection copies the bulk in a thread while commits go on; once it is done, the
        writer checkpoints the few frames committed meanwhile itself. Only a checkpoint that reaches the WAL's end
        lets the next transaction restart the WAL from its beginning, and under continuous
        writes only the writer can reach it: a checkpoint from elsewhere alone never caught up
        and the WAL grew without bound."""
        self._wal_frames += 3 + ops // 4
        run = self._checkpoint_run
        if run is None:
            if self._wal_frames >= WAL_CHECKPOINT_FRAMES:
                self._checkpoint_run = asyncio.ensure_future(background_checkpoint())
            return
        if not run.done():
            return
        self._checkpoint_run = None
        _log_failure(run)
        assert self._wconn is not None  # only SQLite files get a background checkpoint
        started = time.perf_counter()
        try:
            cur = self._raw_cursor(self._wconn)
            _busy, frames, copied = cur.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        except Exception as exc:  # a failed checkpoint only leaves a longer WAL behind
            log.warning("WAL checkpoint failed: %s", exc)
            return
        finally:
            self.stats.checkpoint_loop_seconds += time.perf_counter() - started
        self.stats.checkpoints += 1
        # Complete: the next transaction restarts the WAL. Else (a reader's old snapshot) the
        # rest waits for the next round.
        self._wal_frames = 0 if frames == copied else max(0, frames - copied)

    def _take_batch(self) -> list[_Op]:
        pending = self._pending
        cut = MAX_BATCH_OPS
        if len(pending) > cut:
            while cut < len(pending) and pending[cut].joined:
                cut += 1
        batch, self._pending = pending[:cut], pending[cut:]
        return batch

    async def _commit_batch(self, batch: list[_Op]) -> None:
        """One transaction for the whole batch.

        For a SQLite file the statements run right here on the event loop thread: executing
        them in a thread made every row re-acquire the GIL from a busy loop (up to the 5 ms
        switch interval each time), which multiplied latency under load. The commit (an fsync
        with synchronous=FULL) runs inline too while the disk syncs fast, and moves to the
        writer thread when it gets slow (a slow disk must not stall the loop). Other databases
        do network I/O per statement, so their whole transaction runs in the writer thread."""
        conn = self._wconn
        if conn is None:
            self.stats.commit_seconds += await self._in_writer(lambda: _timed(lambda: self._commit(batch)))
            return
        if all(op.fn is None for op in batch):
            took = await self._commit_raw(conn, batch)
        else:
            trans = conn.begin()
            try:
                self._apply(conn, batch)
                took = await self._timed_commit(trans.commit)
            except BaseException:
                if trans.is_active:
                    trans.rollback()
                raise
        self._commit_avg_seconds = 0.8 * self._commit_avg_seconds + 0.2 * took
        self.stats.commit_seconds += took
        if took >= INLINE_COMMIT_MAX_SECONDS:
            self.stats.slow_commits += 1

    async def _commit_raw(self, conn: Connection, batch: list[_Op]) -> float:
        """A batch of hot statements only: its transaction is driven on the DBAPI connection
        directly (SQLAlchemy's begin/commit bookkeeping and event hook cost as much as the rows
        of a small batch)."""
        cur = self._raw_cursor(conn)
        cur.execute("BEGIN IMMEDIATE")
        try:
            self._apply(conn, batch, raw=True)
            return await self._timed_commit(lambda: cur.execute("COMMIT"))
        except BaseException:
            if cur.connection.in_transaction:
                cur.execute("ROLLBACK")
            raise

    async def _timed_commit(self, commit: Callable[[], Any]) -> float:
        """Run ``commit`` inline while commits are fast, in the writer thread once they are slow."""
        if self._commit_avg_seconds < INLINE_COMMIT_MAX_SECONDS:
            return _timed(commit)
        return await self._in_writer(lambda: _timed(commit))

    def _raw_cursor(self, conn: Connection) -> Any:
        if self._cursor is None:
            # A pooled connection always has its DBAPI connection here; SQLAlchemy types it Optional.
            self._cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        return self._cursor

    def _commit(self, batch: list[_Op]) -> None:
        with self._engine.begin() as conn:
            self._apply(conn, batch)

    def _apply(self, conn: Connection, batch: list[_Op], *, raw: bool = False) -> None:
        ordered = sorted(batch, key=lambda o: o.phase)
        i = 0
        while i < len(ordered):
            op = ordered[i]
            if op.fn is not None:
                op.result = op.fn(conn)
                i += 1
                continue
            j = i
            while j < len(ordered) and ordered[j].fn is None and ordered[j].stmt == op.stmt:
                j += 1
            self._execute_group(conn, op.stmt, ordered[i:j], raw)
            i = j

    def _execute_group(self, conn: Connection, stmt: str, group: list[_Op], raw: bool = False) -> None:
        """One statement for a group of ops; ``raw``: on the writer's DBAPI cursor, inside the
        transaction ``_commit_raw`` opened (SQLAlchemy's connection must not be used then)."""
        first = group[0].params
        assert first is not None
        if stmt == "insert_conversation":
            keys = [o.params["key"] for o in group]
            existing = self._existing(conn, _conversations.c.key, keys, raw)
            for o in group:
                o.result = o.params["key"] not in existing
        sql, row = self._hot_sql(conn, stmt, first)
        params: Any
        if stmt == "insert_history" and self._is_sqlite:  # each item carries its own time
            # ``row`` is set for every hot statement (insert_history is one); mypy cannot see it.
            params = [tuple(_sqlite_ts(v) for v in row(o.params)) for o in group]  # type: ignore[misc]
        elif row is not None:
            params = [row(o.params) for o in group]
        else:
            params = [o.params for o in group]
        if raw or (self._is_sqlite and conn is self._wconn):  # the same DBAPI connection either way
            cur = self._raw_cursor(conn)
            cur.executemany(sql, params)
            rowcount = cur.rowcount
        else:
            rowcount = conn.exec_driver_sql(sql, params).rowcount
        if stmt == "insert_inbound":
            if rowcount == len(group):  # none was a redelivery (the usual case): no query
                for o in group:
                    o.result = True
                return
            ids = [o.params[0] for o in group]  # INBOUND_KEYS[0] is the id
            present = self._existing(conn, _messages.c.id, ids, raw)
            for o in group:
                o.result = o.params[0] in present

    def _existing(self, conn: Connection, column: Any, values: list[Any], raw: bool) -> set[Any]:
        """Which of ``values`` are present in ``column`` (inside the current transaction)."""
        if not raw:
            return set(conn.execute(select(column).where(column.in_(values))).scalars())
        cur = self._raw_cursor(conn)
        marks = ",".join("?" * len(values))
        cur.execute(f'SELECT "{column.name}" FROM "{column.table.name}" WHERE "{column.name}" IN ({marks})', values)
        return {row[0] for row in cur.fetchall()}

    def _hot_sql(self, conn: Connection, stmt: str, sample: Any) -> tuple[str, Callable[[Any], Any] | None]:
        """Compile a hot statement once per dialect, then feed the DBAPI's executemany directly.

        Skipping SQLAlchemy's per-row parameter processing halves the writer's CPU per message;
        values are pre-converted (``_sqlite_ts``) where the dialect needs it."""
        cached = self._hot.get(stmt)
        if cached is not None:
            return cached
        statement: Any
        if stmt == "insert_conversation":
            statement = _insert_ignore(conn, _conversations, ["key"])
        elif stmt == "insert_inbound":
            statement = _insert_ignore(conn, _messages, ["channel", "platform_id"])
        elif stmt == "insert_outbox":
            statement = _insert_ignore(conn, _outbox, ["id"])
        elif stmt == "insert_history":
            statement = insert(_history)
        elif stmt == "insert_usage":
            statement = insert(_usage)
        elif stmt == "add_tokens":
            statement = (
                update(_conversations)
                .where(_conversations.c.key == _bp("ckey"))
                .values(
                    input_tokens=_conversations.c.input_tokens + _bp("din"),
                    output_tokens=_conversations.c.output_tokens + _bp("dout"),
                )
            )
        elif stmt == "set_status":
            statement = (
                update(_messages).where(_messages.c.id == _bp("mid")).values(status=_bp("status"), updated_at=_bp("at"))
            )
        elif stmt == "start_run":  # one more attempt, in the write that marks the run under way
            statement = (
                update(_messages)
                .where(_messages.c.id == _bp("mid"))
                .values(
                    status=literal_column("'processing'"),
                    attempts=_messages.c.attempts + literal_column("1"),
                    updated_at=_bp("at"),
                )
            )
        elif stmt == "set_outbox":
            statement = (
                update(_outbox)
                .where(_outbox.c.id == _bp("oid"))
                .values(
                    status=_bp("status"),
                    platform_ids=_bp("pids"),
                    error=_bp("err"),
                    sent_at=_bp("sent_at"),
                    attempts=_outbox.c.attempts + literal_column("1"),
                )
            )
        else:  # pragma: no cover - programming error
            raise AssertionError(stmt)
        keys = _TUPLE_KEYS.get(stmt)
        compiled = statement.compile(dialect=conn.dialect, column_keys=list(keys or sample))
        # Positional dialects get each row's values in the statement's order, picked in C.
        names = list(compiled.positiontup or ()) if conn.dialect.positional else None
        row: Callable[[Any], Any] | None = None
        if keys is not None:
            if names is None:  # a named paramstyle (psycopg): a dict per row after all
                row = (lambda ks: lambda values: dict(zip(ks, values, strict=True)))(keys)
            elif names != list(keys):
                row = itemgetter(*(keys.index(n) for n in names))
        elif names and len(names) > 1:
            row = itemgetter(*names)
        elif names:
            row = (lambda key: lambda params: (params[key],))(names[0])
        result = (compiled.string, row)
        self._hot[stmt] = result
        return result


def _log_failure(run: asyncio.Future[Any]) -> None:
    if not run.cancelled() and (exc := run.exception()) is not None:
        # A failed checkpoint only leaves a longer WAL behind; the writer's own part still runs.
        log.warning("WAL checkpoint in the background failed: %s", exc)
