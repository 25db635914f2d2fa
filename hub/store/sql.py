"""The durable store: the source of truth for everything that must survive a restart.

One writer thread owns the write connection and *group-commits*: every write request queued
while a transaction runs goes into the next transaction, with same-statement requests run as
one ``executemany``. Callers await a future resolved after the commit, so "recorded" always
means "committed". Reads run on a second small thread pool; history loads are batched the
same way. SQLite runs in WAL mode with ``BEGIN IMMEDIATE`` for writes (docs/PLATFORMS.md Q1, Q3, Q4).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import IO, Any, Literal, TypeVar, overload

from sqlalchemy import Connection, Engine, create_engine, event, func, insert, select, update
from sqlalchemy.exc import ArgumentError, SQLAlchemyError
from sqlalchemy.pool import NullPool
from sqlmodel import SQLModel

from .._lifecycle import Lifecycle
from ..agent import HistoryItem, Usage
from ..config import Settings, make_private_dir, sqlite_path
from ..errors import StoreError
from ..messages import ConversationRef, Inbound, Outbound, utcnow
from ..redact import masked_url
from . import outbox as outbox_sql
from ._files import StoreHealth, private_database
from ._lock import release_lease, take_file_lock, take_lease
from ._rows import (
    _as_store_error,
    _clear_history,
    _history_row,
    _outbox_row,
    _with_id,
    load_sessions,
)
from ._writer import (
    _P_CONV,
    _P_FN,
    _P_HISTORY,
    _P_INBOUND,
    _P_OUTBOX,
    _P_OUTSTATUS,
    _P_START,
    _P_STATUS,
    _P_USAGE,
    NOT_RUNNING,
    GroupCommitWriter,
    _Op,
)
from .base import SessionSnapshot, SQLStoreAPI, WriteStats
from .codec import inbound_from_json, inbound_to_json, outbound_from_json
from .tables import (
    CONVERSATIONS as _conversations,
    HUB_LOCK,
    MESSAGES as _messages,
    OUTBOX as _outbox,
    STATE as _state,
)

log = logging.getLogger(__name__)
T = TypeVar("T")


WAL_AUTOCHECKPOINT_PAGES = 1000
"""With ``synchronous=FULL`` the writer checkpoints inside the commit that takes the WAL past
this many pages (SQLite's default), a few milliseconds on the loop now and then. The WAL then
restarts from its beginning, so commits overwrite blocks the file already has: with a WAL that
only grows, every fsync also journals the file's new size, which made each FULL commit markedly
slower (docs/ARCHITECTURE.md, "Store: measured"). With NORMAL or OFF the bulk of each checkpoint runs off the loop
instead (``GroupCommitWriter._keep_wal_short``); with FULL that was slower, since its syncs
compete with every commit's own."""


def _checkpoints_off_the_loop(synchronous: str) -> bool:
    return synchronous.upper() != "FULL"


# DBAPI modules SQLAlchemy imports for a URL, and the pip package that provides each.
_DRIVER_PACKAGES = {
    "psycopg": "psycopg[binary]",
    "psycopg2": "psycopg2-binary",
    "MySQLdb": "mysqlclient",
    "pymysql": "PyMySQL",
    "pyodbc": "pyodbc",
    "oracledb": "oracledb",
}


class Store:
    """Async API over the hub's database. ``async with Store(url) as store: ...``."""

    @classmethod
    def from_settings(cls, settings: Settings, *, lock: bool = True) -> Store:
        """The store ``[store]`` configures (``url``, else the SQLite file in the data directory;
        ``synchronous``): the hub's, and the CLI's beside it (``lock=False``: see ``__init__``)."""
        return cls(settings.store_url, synchronous=settings.store.synchronous, lock=lock)

    def __init__(self, url: str, *, synchronous: str = "FULL", lock: bool = True) -> None:
        self.url = url
        self._lock = lock
        """False: do not take the one-hub lock (brief CLI access beside a running hub)."""
        self._synchronous = synchronous
        self._is_sqlite = url.startswith("sqlite")
        self._writer: Engine | None = None
        self._reader: Engine | None = None
        self._write_pool: ThreadPoolExecutor | None = None
        self._read_pool: ThreadPoolExecutor | None = None
        self._checkpoint_pool: ThreadPoolExecutor | None = None
        self._history_waiters: dict[str, list[asyncio.Future[SessionSnapshot]]] = {}
        self._wake_history = asyncio.Event()
        self._history_task: asyncio.Task[None] | None = None
        self._next_message_id = 0
        self._lock_file: IO[str] | None = None
        self._lease_task: asyncio.Task[None] | None = None
        self._owner = uuid.uuid4().hex
        self._wconn: Connection | None = None
        self._batcher: GroupCommitWriter | None = None
        self._known_conversations: OrderedDict[str, None] = OrderedDict()
        self._new_conversations: OrderedDict[str, None] = OrderedDict()
        self._life = Lifecycle("Store")

    # ----------------------------------------------------------------- lifecycle
    async def __aenter__(self) -> Store:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def start(self) -> None:
        """Open the database and take the one-hub lock; a failure closes what was opened.

        Raises:
            StoreError: the database cannot be opened (the message says how to fix it).
            HubLockedError: another hub runs on this database.
            RuntimeError: started already (one life: docs/ARCHITECTURE.md, "Lifecycle").
        """
        with self._life.starting():
            self._write_pool = ThreadPoolExecutor(1, thread_name_prefix="store-writer")
            self._read_pool = ThreadPoolExecutor(2, thread_name_prefix="store-reader")
            self._checkpoint_pool = ThreadPoolExecutor(1, thread_name_prefix="store-checkpoint")
            try:
                await self._in_writer(self._open)
                if not self._lock:
                    pass
                elif self._is_sqlite:
                    self._take_file_lock()
                else:
                    await self._in_writer(self._take_lease)
                    self._lease_task = asyncio.create_task(self._renew_lease(), name="store-lease")
            except BaseException:
                await self._dispose()
                raise
            assert self._writer is not None and self._write_pool is not None
            self._batcher = GroupCommitWriter(
                self._writer,
                self._wconn,
                self._write_pool,
                is_sqlite=self._is_sqlite,
                checkpoint=self._passive_checkpoint
                if self._wconn is not None and _checkpoints_off_the_loop(self._synchronous)
                else None,
            )
            self._batcher.start()
            self._history_task = asyncio.create_task(self._history_loop(), name="store-history")

    async def stop(self) -> None:
        """Commit what is queued, then close; the database and its lock are released even if
        that fails. Does nothing unless running."""
        if not self._life.stopping():
            return
        assert self._batcher is not None
        try:
            await self._batcher.close()  # drains what is queued
            if self._history_task:
                self._history_task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._history_task
            if self._sqlite_path() is not None:
                await self._checkpoint("TRUNCATE")  # leave a small WAL behind
            if self._lease_task:
                self._lease_task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._lease_task
                await self._in_writer(self._release_lease)
        finally:
            self._batcher = None
            await self._dispose()

    async def _dispose(self) -> None:
        if self._wconn is not None:
            self._wconn.close()
            self._wconn = None
        if self._writer:
            self._writer.dispose()
        if self._reader:
            self._reader.dispose()
        for pool in (self._write_pool, self._read_pool, self._checkpoint_pool):
            if pool:
                pool.shutdown(wait=True)
        if self._lock_file is not None:
            self._lock_file.close()  # releases the flock
            self._lock_file = None

    def _open(self) -> None:
        if self._is_sqlite:
            path = self._sqlite_path()
            if path is not None:
                self._prepare_file(path)
            # check_same_thread off: the writer connection is opened here and then used only by
            # the writer (statements on the loop, commits on this thread), never concurrently.
            self._writer = self._engine(
                poolclass=NullPool if path is None else None, connect_args={"check_same_thread": False}
            )
            self._reader = self._engine()
            self._install_sqlite_pragmas(self._writer, immediate=True)
            self._install_sqlite_pragmas(self._reader, immediate=False)
        else:
            self._writer = self._engine(pool_pre_ping=True)
            self._reader = self._writer
        try:
            SQLModel.metadata.create_all(self._writer)
            with self._writer.connect() as conn:
                self._next_message_id = conn.execute(select(func.max(_messages.c.id))).scalar() or 0
            if self._is_sqlite and self._sqlite_path() is not None:
                self._wconn = self._writer.connect()
        except SQLAlchemyError as exc:
            raise StoreError(
                f"cannot open the database {self._safe_url()}: {exc.__class__.__name__}: {str(exc).splitlines()[0]}"
            ) from None

    @staticmethod
    def _prepare_file(path: Path) -> None:
        """The database's folder (0700) and file (0600), or a ``StoreError`` saying what to fix."""
        try:
            make_private_dir(path.parent)
        except OSError as exc:
            raise StoreError(
                f"cannot create the database folder {path.parent}: {exc.strerror}; "
                "fix its permissions or set [store] url"
            ) from None
        if not os.access(path.parent, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
            raise StoreError(
                f"the database {path} is not writable; fix its permissions or set [store] url to a writable place"
            )
        try:
            private_database(path)
        except OSError as exc:
            raise StoreError(f"cannot create the database {path}: {exc.strerror}; fix its permissions") from None

    def _engine(self, **kw: Any) -> Engine:
        """``create_engine`` with the mistakes a config can make told as one line each."""
        try:
            return create_engine(self.url, **kw)
        except ImportError as exc:  # the dialect's DBAPI driver is not installed
            module = exc.name or str(exc)
            package = _DRIVER_PACKAGES.get(module, module)
            raise StoreError(
                f"the database {self._safe_url()} needs the Python module {module!r}, which is "
                f"not installed: pip install '{package}' (or set [store] url to a sqlite:/// path)"
            ) from None
        except ArgumentError as exc:  # unparsable URL, or a database kind SQLAlchemy does not know
            raise StoreError(
                f"[store] url {self._safe_url()!r} is not a usable database URL ({exc}); "
                "expected e.g. sqlite:////path/to/autohands.db or "
                "postgresql+psycopg://user:password@host/dbname"
            ) from None

    def _sqlite_path(self) -> Path | None:
        return sqlite_path(self.url)

    def _safe_url(self) -> str:
        return masked_url(self.url)

    def _install_sqlite_pragmas(self, engine: Engine, *, immediate: bool) -> None:
        sync = self._synchronous

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_conn: Any, _record: Any) -> None:
            dbapi_conn.isolation_level = None  # we issue BEGIN ourselves
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute(f"PRAGMA synchronous={sync}")
            cur.execute("PRAGMA busy_timeout=10000")
            if immediate:
                pages = 0 if _checkpoints_off_the_loop(sync) else WAL_AUTOCHECKPOINT_PAGES
                cur.execute(f"PRAGMA wal_autocheckpoint={pages}")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

        @event.listens_for(engine, "begin")
        def _on_begin(conn: Connection) -> None:
            # A deferred transaction that reads then writes can fail with SQLITE_BUSY without
            # the busy handler being consulted; writers take the lock up front.
            conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    def _take_file_lock(self) -> None:
        path = self._sqlite_path()
        if path is not None:
            self._lock_file = take_file_lock(path)

    def _take_lease(self) -> None:
        assert self._writer is not None
        take_lease(self._writer, self._owner)

    def _release_lease(self) -> None:
        assert self._writer is not None
        release_lease(self._writer, self._owner)

    async def _renew_lease(self) -> None:
        while True:
            await asyncio.sleep(10)
            await self.run_write(
                lambda c: c.execute(
                    update(HUB_LOCK).where(HUB_LOCK.c.owner == self._owner).values(heartbeat_at=utcnow())
                )
            )

    async def _run_checkpoint(self, mode: str, pool: ThreadPoolExecutor | None) -> None:
        assert self._reader is not None and pool is not None
        engine = self._reader

        def run() -> None:
            raw = engine.raw_connection()  # outside any transaction: a snapshot would pin the WAL
            try:
                raw.cursor().execute(f"PRAGMA wal_checkpoint({mode})").fetchall()
            finally:
                raw.close()

        await asyncio.get_running_loop().run_in_executor(pool, run)

    async def _passive_checkpoint(self) -> None:
        """The bulk of a WAL checkpoint, in the checkpoint thread (the writer logs a failure)."""
        await self._run_checkpoint("PASSIVE", self._checkpoint_pool)

    async def _checkpoint(self, mode: str) -> None:
        try:
            await self._run_checkpoint(mode, self._read_pool)
        except Exception as exc:  # a failed checkpoint only leaves a larger WAL behind
            log.warning("WAL checkpoint (%s) failed: %s", mode, exc)

    # ----------------------------------------------------------------- the writer
    async def _in_writer(self, fn: Callable[[], T]) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._write_pool, fn)

    def _now(self) -> Any:
        if self._batcher is None:
            raise RuntimeError(NOT_RUNNING)
        return self._batcher.stamp()

    @overload
    def _submit(self, op: _Op, *, wait: Literal[True] = ...) -> asyncio.Future[Any]: ...
    @overload
    def _submit(self, op: _Op, *, wait: Literal[False]) -> None: ...
    @overload
    def _submit(self, op: _Op, *, wait: bool) -> asyncio.Future[Any] | None: ...
    def _submit(self, op: _Op, *, wait: bool = True) -> asyncio.Future[Any] | None:
        if self._batcher is None:
            raise RuntimeError(NOT_RUNNING)
        return self._batcher.submit(op, wait=wait)

    @property
    def write_stats(self) -> WriteStats:
        """A copy of the writer's counters (zero before start)."""
        return replace(self._batcher.stats) if self._batcher else WriteStats()

    # ----------------------------------------------------------------- generic access
    async def run_write(self, fn: Callable[[Connection], T]) -> T:
        """Run ``fn(conn)`` inside the next group commit and return its result."""
        result: T = await self._submit(_Op(_P_FN, "fn", fn=fn))
        return result

    async def run_read(self, fn: Callable[[Connection], T]) -> T:
        """Run ``fn(conn)`` on a reader connection (sees every committed write)."""
        if self._batcher is None or self._reader is None:
            raise RuntimeError(NOT_RUNNING)
        engine = self._reader

        def _read() -> T:
            with engine.connect() as conn:
                return fn(conn)

        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._read_pool, _read)
        except SQLAlchemyError as exc:
            raise _as_store_error(exc) from None

    # ----------------------------------------------------------------- inbound
    def allocate_message_id(self) -> int:
        """A fresh ``messages.id`` for a row written through ``run_write`` (the scheduler's fires)."""
        self._next_message_id += 1
        return self._next_message_id

    async def record_inbound(self, inbound: Inbound) -> Inbound | None:
        """Commit an inbound; returns it with its ``id``, or None if it was already recorded."""
        self._next_message_id += 1
        mid = self._next_message_id
        conv = inbound.conversation
        key = conv.key
        platform_id = inbound.platform_id or f"auto:{uuid.uuid4().hex}"
        if not inbound.platform_id:
            inbound = replace(inbound, platform_id=platform_id)
        now = self._now()
        conv_op: _Op | None = None
        if key not in self._known_conversations:
            conv_op = _Op(
                _P_CONV,
                "insert_conversation",
                {
                    "key": key,
                    "channel": conv.channel,
                    "chat": conv.chat,
                    "thread": conv.thread,
                    "settings": "{}",
                    "input_tokens": 0,
                    "output_tokens": 0,
                    "created_at": now,
                },
            )
            self._submit(conv_op, wait=False)
            self._known_conversations[key] = None
            if len(self._known_conversations) > 50_000:
                self._known_conversations.popitem(last=False)
        inserted = await self._submit(
            _Op(
                _P_INBOUND,
                "insert_inbound",
                (  # INBOUND_KEYS
                    mid,
                    conv.channel,
                    platform_id,
                    key,
                    inbound.kind,
                    inbound_to_json(inbound),
                    "received",
                    0,
                    now,
                    now,
                ),
                joined=conv_op is not None,
            )
        )
        if conv_op is not None and conv_op.result:
            # A conversation this commit created has no history or settings: its session
            # need not be loaded from the database.
            self._new_conversations[key] = None
            if len(self._new_conversations) > 50_000:
                self._new_conversations.popitem(last=False)
        return _with_id(inbound, mid) if inserted else None

    def mark_processing(self, inbound_id: int) -> asyncio.Future[Any]:
        """Count one attempt and mark the inbound ``processing``, in one write, as its run starts.

        Returns a future resolved once committed (group-committed with whatever else is queued).
        The caller awaits it before the run can do anything that might kill the hub, so every
        run that started is counted even if the process dies right after; ``pending_inbound``
        reports the count after a restart."""
        return self._submit(_Op(_P_START, "start_run", (self._now(), inbound_id)))

    def give_back_attempt(self, inbound_id: int) -> None:
        """Take back the attempt of a run the hub itself stopped (shutdown, not a failure), so
        restarts alone never set a message aside. Queued; the store's stop drains it."""

        def give_back(conn: Connection) -> None:
            conn.execute(
                update(_messages)
                .where(_messages.c.id == inbound_id, _messages.c.attempts > 0)
                .values(attempts=_messages.c.attempts - 1)
            )

        self._submit(_Op(_P_FN, "fn", fn=give_back), wait=False)

    async def set_inbound_status(self, inbound_id: int, status: str) -> None:
        """Set an inbound's status alone. Only tests use this."""
        await self._submit(_Op(_P_STATUS, "set_status", (status, self._now(), inbound_id)))

    async def finish_run(
        self,
        inbound: Inbound | None,
        *,
        reply: Outbound | None,
        remember: Sequence[HistoryItem] = (),
        replace_history: Sequence[HistoryItem] | None = None,
        usage: Sequence[tuple[str, str, Usage]] = (),
        status: str = "answered",
    ) -> None:
        """One transaction: the last reply into the outbox, history, usage, inbound answered."""
        now = self._now()
        if not remember and replace_history is None and not usage and inbound is not None and inbound.id:
            # The usual end of a quick run: its reply and the answered mark, one unit.
            if reply is not None:
                self._submit(_Op(_P_OUTBOX, "insert_outbox", _outbox_row(reply, now)), wait=False)
            await self._submit(_Op(_P_STATUS, "set_status", (status, now, inbound.id), joined=reply is not None))
            return
        key = reply.conversation.key if reply else inbound.conversation.key if inbound else ""
        if remember or replace_history is not None:
            self._new_conversations.pop(key, None)  # it has history now
        ops: list[tuple[_Op, bool]] = []  # (op, whether its caller awaits it)
        if replace_history is not None:
            ops.append((_Op(_P_HISTORY, "fn", fn=_clear_history(key)), True))
        for item in (*(replace_history or ()), *remember):
            ops.append((_Op(_P_HISTORY, "insert_history", _history_row(key, item)), False))
        for provider, model, u in usage:
            ops.append(
                (
                    _Op(
                        _P_USAGE,
                        "insert_usage",
                        {
                            "conversation_key": key,
                            "inbound_id": inbound.id if inbound else 0,
                            "provider": provider,
                            "model": model,
                            "input_tokens": u.input_tokens,
                            "output_tokens": u.output_tokens,
                            "cache_read_tokens": u.cache_read_tokens,
                            "cache_write_tokens": u.cache_write_tokens,
                            "created_at": now,
                        },
                    ),
                    False,
                )
            )
        if usage:
            total_in = sum(u.input_tokens for _, _, u in usage)
            total_out = sum(u.output_tokens for _, _, u in usage)
            ops.append((_Op(_P_USAGE, "add_tokens", {"ckey": key, "din": total_in, "dout": total_out}), False))
        if reply is not None:
            ops.append((_Op(_P_OUTBOX, "insert_outbox", _outbox_row(reply, now)), False))
        if inbound is not None and inbound.id:
            ops.append((_Op(_P_STATUS, "set_status", (status, now, inbound.id)), True))
        futs: list[asyncio.Future[Any] | None] = []
        for i, (op, wait) in enumerate(ops):
            op.joined = i > 0  # the reply and the answered mark commit together, or not at all
            futs.append(self._submit(op, wait=wait))
        if reply is None and (inbound is None or not inbound.id):
            return
        # Queued as one unit (``joined``), so it lands in one commit.
        # Await the last waitable future (if the batch failed and was split, errors surface here).
        waits = [f for f in futs if f is not None]
        if len(waits) == 1:
            await waits[0]
        elif waits:
            await asyncio.gather(*waits)
        elif reply is not None:
            await self.run_write(lambda c: None)

    async def pending_inbound(self) -> list[tuple[Inbound, int]]:
        """Inbounds received or processing but not answered, oldest first, each with the
        number of runs started for it (``mark_processing``). Reading them counts nothing: a
        message that only waited in its queue through restarts has used no attempt."""

        def _q(c: Connection) -> list[tuple[Inbound, int]]:
            rows = c.execute(
                select(_messages.c.id, _messages.c.payload, _messages.c.attempts)
                .where(_messages.c.status.in_(("received", "processing")))
                .order_by(_messages.c.id)
            ).all()
            return [(inbound_from_json(r.payload, row_id=r.id), r.attempts) for r in rows]

        return await self.run_read(_q)

    # ----------------------------------------------------------------- outbound
    async def record_outbound(self, outbound: Outbound) -> None:
        await self._submit(_Op(_P_OUTBOX, "insert_outbox", _outbox_row(outbound, self._now())))

    def mark_sent(self, outbound_id: str, platform_ids: Iterable[str]) -> asyncio.Future[Any]:
        return self._submit(
            _Op(_P_OUTSTATUS, "set_outbox", ("sent", ",".join(platform_ids), "", self._now(), outbound_id))
        )

    def mark_failed(self, outbound_id: str, error: str) -> asyncio.Future[Any]:
        return self._submit(_Op(_P_OUTSTATUS, "set_outbox", ("failed", "", error[:500], None, outbound_id)))

    async def pending_outbound(self) -> list[Outbound]:
        def _q(c: Connection) -> list[Outbound]:
            rows = c.execute(
                select(_outbox.c.payload).where(_outbox.c.status == "pending").order_by(_outbox.c.created_at)
            ).all()
            return [outbound_from_json(r.payload) for r in rows]

        return await self.run_read(_q)

    async def outbox_status(self, outbound_id: str) -> tuple[str, str] | None:
        """A reply's (status, platform ids), or None. Only tests use this."""

        def _q(c: Connection) -> tuple[str, str] | None:
            row = c.execute(select(_outbox.c.status, _outbox.c.platform_ids).where(_outbox.c.id == outbound_id)).first()
            return (row.status, row.platform_ids) if row else None

        return await self.run_read(_q)

    async def note_send_failure(self, outbound_id: str, error: str) -> None:
        """Count one failed try of a reply that stays pending and keep its error (``autohands outbox``)."""
        await self.run_write(lambda c: outbox_sql.note_failure(c, outbound_id, error))

    async def take_resend_requests(self) -> list[Outbound]:
        """The pending replies ``autohands outbox retry`` asked for since the last call, oldest first."""
        if not await self.run_read(outbox_sql.resend_requested):
            return []
        return [outbound_from_json(p) for p in await self.run_write(outbox_sql.take_resend_requests)]

    # ----------------------------------------------------------------- sessions
    async def load_session(self, key: str) -> SessionSnapshot:
        """History and settings of a conversation; concurrent loads share one query."""
        if self._new_conversations.pop(key, 0) is None:
            return SessionSnapshot()
        fut: asyncio.Future[SessionSnapshot] = asyncio.get_running_loop().create_future()
        self._history_waiters.setdefault(key, []).append(fut)
        self._wake_history.set()
        return await fut

    async def _history_loop(self) -> None:
        while True:
            await self._wake_history.wait()
            self._wake_history.clear()
            waiters, self._history_waiters = self._history_waiters, {}
            if not waiters:
                continue
            keys = list(waiters)
            try:
                snaps = await self.run_read(partial(load_sessions, keys=keys))
            except Exception as exc:
                for futs in waiters.values():
                    for f in futs:
                        if not f.done():
                            f.set_exception(exc)
                continue
            for k, futs in waiters.items():
                for f in futs:
                    if not f.done():
                        f.set_result(snaps.get(k, SessionSnapshot()))

    async def clear_history(self, key: str) -> None:
        await self.run_write(_clear_history(key))

    async def set_setting(self, key: str, name: str, value: str | None) -> dict[str, str]:
        self._new_conversations.pop(key, None)

        def _fn(c: Connection) -> dict[str, str]:
            raw = c.execute(select(_conversations.c.settings).where(_conversations.c.key == key)).scalar()
            settings = json.loads(raw) if raw else {}
            if value is None:
                settings.pop(name, None)
            else:
                settings[name] = value
            if raw is None:
                conv = ConversationRef.from_key(key)
                c.execute(
                    insert(_conversations).values(
                        key=key,
                        channel=conv.channel,
                        chat=conv.chat,
                        thread=conv.thread,
                        settings=json.dumps(settings),
                        created_at=utcnow(),
                    )
                )
            else:
                c.execute(
                    update(_conversations).where(_conversations.c.key == key).values(settings=json.dumps(settings))
                )
            return dict(settings)

        return await self.run_write(_fn)

    async def conversation_usage(self, key: str) -> tuple[int, int]:
        """The conversation's (input, output) token totals. Only tests use this."""

        def _q(c: Connection) -> tuple[int, int]:
            row = c.execute(
                select(_conversations.c.input_tokens, _conversations.c.output_tokens).where(_conversations.c.key == key)
            ).first()
            return (row.input_tokens, row.output_tokens) if row else (0, 0)

        return await self.run_read(_q)

    # ----------------------------------------------------------------- state
    async def state_get(self, key: str) -> str | None:
        return await self.run_read(lambda c: c.execute(select(_state.c.value).where(_state.c.key == key)).scalar())

    async def state_set(self, key: str, value: str) -> None:
        def _fn(c: Connection) -> None:
            if c.execute(update(_state).where(_state.c.key == key).values(value=value)).rowcount == 0:
                c.execute(insert(_state).values(key=key, value=value))

        await self.run_write(_fn)

    async def count_messages(self) -> dict[str, int]:
        def _q(c: Connection) -> dict[str, int]:
            rows = c.execute(select(_messages.c.status, func.count()).group_by(_messages.c.status)).all()
            return {r[0]: r[1] for r in rows}

        return await self.run_read(_q)

    async def health(self) -> StoreHealth:
        """What ``autohands doctor`` reports: SQLite's ``PRAGMA quick_check``, the size of the
        files, whether they are writable, and the messages by status."""
        path = self._sqlite_path()

        def _q(c: Connection) -> str:
            if not self._is_sqlite:
                return "ok"
            rows = [str(r[0]) for r in c.exec_driver_sql("PRAGMA quick_check").all()]
            return "; ".join(rows[:5]) or "no answer"

        integrity = await self.run_read(_q)
        files = [path, path.with_name(path.name + "-wal")] if path is not None else []
        size = sum(f.stat().st_size for f in files if f.exists())
        writable = path is None or (os.access(path, os.W_OK) and os.access(path.parent, os.W_OK))
        return StoreHealth(
            integrity=integrity, size_bytes=size, writable=writable, messages=await self.count_messages()
        )


_: type[SQLStoreAPI] = Store
"""Checked by mypy: ``Store`` keeps to ``SQLStoreAPI`` (and so to ``StoreAPI``)."""
