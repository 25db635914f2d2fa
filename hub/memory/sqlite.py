"""The ``sqlite`` memory backend: memories in an SQLite file with an FTS5 index ranked by BM25.

No extra service: the file sits beside the hub's database (or wherever the caller says), private
(0600, ``hub.store._files.private_database``) and in WAL mode. SQLite calls block, so they run
on one worker thread of the backend's own, which also owns the connection (opened on first use);
the event loop only awaits them. User text never reaches FTS5 as syntax: each term of a query
is quoted (``_match_expression``), so ``"``, ``*``, ``NEAR`` or ``-`` are searched as words.
"""

from __future__ import annotations

import asyncio
import builtins
import json
import sqlite3
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import ClassVar, TypeVar

from hub.extensions import Manifest
from hub.memory._terms import query_terms
from hub.memory.base import Hit, Memory, MemoryOptions, Scope, require_scope
from hub.store._files import private_database

__all__ = ["COLUMNS", "SqliteMemory", "memory_from_row", "scope_filter"]

T = TypeVar("T")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS memories (
    rowid INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    scope_kind TEXT NOT NULL,
    scope_key TEXT NOT NULL,
    text TEXT NOT NULL,
    created_at TEXT NOT NULL,
    source TEXT NOT NULL,
    metadata TEXT NOT NULL DEFAULT '{}',
    scope_token TEXT GENERATED ALWAYS AS ('s' || hex(scope_kind || ':' || scope_key)) VIRTUAL
);
CREATE INDEX IF NOT EXISTS memories_scope ON memories (scope_kind, scope_key, created_at);
CREATE VIRTUAL TABLE IF NOT EXISTS memories_fts USING fts5 (
    text, scope_token, content='memories', content_rowid='rowid',
    tokenize='porter unicode61 remove_diacritics 2'
);
CREATE TRIGGER IF NOT EXISTS memories_ai AFTER INSERT ON memories BEGIN
    INSERT INTO memories_fts (rowid, text, scope_token) VALUES (new.rowid, new.text, new.scope_token);
END;
CREATE TRIGGER IF NOT EXISTS memories_ad AFTER DELETE ON memories BEGIN
    INSERT INTO memories_fts (memories_fts, rowid, text, scope_token)
    VALUES ('delete', old.rowid, old.text, old.scope_token);
END;
"""

COLUMNS = "m.id, m.scope_kind, m.scope_key, m.text, m.created_at, m.source, m.metadata"


def _match_expression(query: str, scopes: Sequence[Scope]) -> str:
    """``query`` as an FTS5 expression: its meaningful terms (``_terms.query_terms``), each
    quoted and joined by OR (BM25 then ranks documents matching more and rarer terms first),
    within the scope tokens of ``scopes``; ``""`` when no term has a letter or digit.

    The scope tokens (``memories.scope_token``: ``s`` + the hex of ``kind:key``) let FTS5
    intersect the terms' postings with the caller's scopes instead of scoring every user's
    matches; the SQL condition on ``scope_kind``/``scope_key`` stays the guarantee."""
    terms = query_terms(query)
    if not terms:
        return ""
    words = " OR ".join('"' + term.replace('"', '""') + '"' for term in terms)
    tokens = " OR ".join(f'"{_scope_token(scope)}"' for scope in dict.fromkeys(scopes))
    return f"scope_token : ({tokens}) AND text : ({words})"


def _scope_token(scope: Scope) -> str:
    """What the ``scope_token`` column holds for ``scope`` (the same expression in Python)."""
    return "s" + f"{scope.kind}:{scope.key}".encode().hex().upper()


def scope_filter(scopes: Sequence[Scope]) -> tuple[str, list[str]]:
    """An SQL condition matching exactly the memories in ``scopes``, and its parameters."""
    unique = list(dict.fromkeys(scopes))
    clause = " OR ".join("(m.scope_kind = ? AND m.scope_key = ?)" for _ in unique)
    return f"({clause})", [part for scope in unique for part in (scope.kind, scope.key)]


def memory_from_row(row: sqlite3.Row) -> Memory:
    """A ``memories`` row selected with ``COLUMNS`` as a ``Memory`` (the ``vector`` backend's too)."""
    metadata: dict[str, str] = json.loads(row["metadata"])
    return Memory(
        id=row["id"],
        scope=Scope(row["scope_kind"], row["scope_key"]),
        text=row["text"],
        created_at=datetime.fromisoformat(row["created_at"]),
        source=row["source"],
        metadata=metadata,
    )


def _row(memory: Memory) -> tuple[str, ...]:
    """``memory`` as the ``memories`` table's columns after ``rowid``."""
    return (
        memory.id,
        memory.scope.kind,
        memory.scope.key,
        memory.text,
        memory.created_at.isoformat(),
        memory.source,
        json.dumps(dict(memory.metadata)),
    )


class SqliteMemory:
    """A ``MemoryBackend`` on one SQLite file; an async context manager (``close`` on exit)."""

    manifest: ClassVar[Manifest] = Manifest(
        id="sqlite",
        name="SQLite memory",
        description="Memories in an SQLite file with a full-text index ranked by BM25; no extra service.",
        provides=("memory:sqlite",),
        permissions=("fs.write",),
    )

    @classmethod
    def from_options(cls, options: MemoryOptions) -> SqliteMemory:
        """The backend on ``options.path`` (``[memory] path``)."""
        return cls(options.path)

    def __init__(self, path: Path) -> None:
        self._path = path.expanduser()
        self._executor: ThreadPoolExecutor | None = None
        self._db: sqlite3.Connection | None = None
        self._closed = False

    @property
    def path(self) -> Path:
        """The SQLite file."""
        return self._path

    async def __aenter__(self) -> SqliteMemory:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def _run(self, work: Callable[[sqlite3.Connection], T]) -> T:
        if self._closed:
            raise RuntimeError("this memory backend is closed")
        if self._executor is None:
            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="memory-sqlite")
        return await asyncio.get_running_loop().run_in_executor(self._executor, self._call, work)

    def _call(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """On the worker thread: open the file on first use, then run ``work`` in a transaction."""
        if self._db is None:
            self._db = self._open()
        with self._db:
            return work(self._db)

    def _open(self) -> sqlite3.Connection:
        self._path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        private_database(self._path)
        db = sqlite3.connect(self._path, check_same_thread=False)
        db.row_factory = sqlite3.Row
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        db.executescript(_SCHEMA)
        return db

    async def close(self) -> None:
        """Close the connection and stop the worker thread; safe to call twice."""
        if self._closed:
            return
        self._closed = True
        executor, self._executor = self._executor, None
        if executor is not None:
            await asyncio.get_running_loop().run_in_executor(executor, self._close_db)
            executor.shutdown(wait=True)

    def _close_db(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    async def store(
        self,
        text: str,
        *,
        scope: Scope,
        source: str,
        scopes: Sequence[Scope],
        metadata: Mapping[str, str] | None = None,
    ) -> Memory:
        """Keep ``text`` in ``scope``; raises ``ScopeDenied`` unless ``scope`` is in ``scopes``."""
        require_scope(scope, scopes)
        memory = Memory.new(text, scope=scope, source=source, metadata=metadata)
        row = _row(memory)
        await self._run(
            lambda db: db.execute(
                "INSERT INTO memories (id, scope_kind, scope_key, text, created_at, source,"
                " metadata) VALUES (?, ?, ?, ?, ?, ?, ?)",
                row,
            )
        )
        return memory

    async def get(self, memory_id: str, *, scopes: Sequence[Scope]) -> Memory | None:
        """The memory, or ``None`` if there is none with that id in ``scopes``."""
        if not scopes:
            return None
        where, params = scope_filter(scopes)
        sql = f"SELECT {COLUMNS} FROM memories m WHERE m.id = ? AND {where}"
        row = await self._run(lambda db: db.execute(sql, [memory_id, *params]).fetchone())
        return None if row is None else memory_from_row(row)

    async def search(self, query: str, *, scopes: Sequence[Scope], limit: int = 5) -> builtins.list[Hit]:
        """The memories in ``scopes`` best matching ``query`` by BM25, best first."""
        match = _match_expression(query, scopes)
        if not scopes or not match or limit <= 0:
            return []
        where, params = scope_filter(scopes)
        sql = (
            f"SELECT {COLUMNS}, bm25(memories_fts, 1.0, 0.0) AS rank FROM memories_fts"
            f" JOIN memories m ON m.rowid = memories_fts.rowid"
            f" WHERE memories_fts MATCH ? AND {where} ORDER BY rank LIMIT ?"
        )
        rows = await self._run(lambda db: db.execute(sql, [match, *params, limit]).fetchall())
        # bm25() is lower for better matches; a Hit's score is higher for better ones.
        return [Hit(memory=memory_from_row(row), score=-float(row["rank"]), via="fulltext") for row in rows]

    async def delete(self, memory_id: str, *, scopes: Sequence[Scope]) -> bool:
        """Delete one memory; false if there is none with that id in ``scopes``."""
        if not scopes:
            return False
        where, params = scope_filter(scopes)
        sql = f"DELETE FROM memories AS m WHERE m.id = ? AND {where}"
        count = await self._run(lambda db: db.execute(sql, [memory_id, *params]).rowcount)
        return count > 0

    async def list(self, *, scopes: Sequence[Scope], limit: int = 100) -> builtins.list[Memory]:
        """The memories in ``scopes``, newest first."""
        if not scopes or limit <= 0:
            return []
        where, params = scope_filter(scopes)
        sql = f"SELECT {COLUMNS} FROM memories m WHERE {where} ORDER BY m.created_at DESC, m.rowid DESC LIMIT ?"
        rows = await self._run(lambda db: db.execute(sql, [*params, limit]).fetchall())
        return [memory_from_row(row) for row in rows]

    async def delete_scope(self, scope: Scope, *, scopes: Sequence[Scope]) -> int:
        """Delete every memory of ``scope``; how many went. ``ScopeDenied`` unless in ``scopes``."""
        require_scope(scope, scopes)
        sql = "DELETE FROM memories WHERE scope_kind = ? AND scope_key = ?"
        return await self._run(lambda db: db.execute(sql, (scope.kind, scope.key)).rowcount)

    async def scope_counts(self) -> builtins.list[tuple[Scope, int]]:
        """Every scope holding memories, with how many, by kind and key."""
        sql = (
            "SELECT scope_kind, scope_key, COUNT(*) AS n FROM memories"
            " GROUP BY scope_kind, scope_key ORDER BY scope_kind, scope_key"
        )
        rows = await self._run(lambda db: db.execute(sql).fetchall())
        return [(Scope(row["scope_kind"], row["scope_key"]), int(row["n"])) for row in rows]

    async def restore(self, memories: Sequence[Memory]) -> int:
        """Insert ``memories`` as they are; ids already present are skipped. How many were added."""
        rows = [_row(memory) for memory in memories]
        sql = (
            "INSERT OR IGNORE INTO memories (id, scope_kind, scope_key, text, created_at, source,"
            " metadata) VALUES (?, ?, ?, ?, ?, ?, ?)"
        )
        return await self._run(lambda db: sum(db.execute(sql, row).rowcount for row in rows))
