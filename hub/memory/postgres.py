"""The ``postgres`` memory backend: memories in PostgreSQL, found by its full-text search and,
with an embedder, by vectors too (pgvector where installed), the two rankings fused.

Connection: SQLAlchemy's async engine on psycopg 3: ``[memory] url`` is an SQLAlchemy URL (the
store's by default), read by the same parser (``?host=/socket/dir`` too), and the engine brings
a pool; whatever driver the URL names, psycopg 3 runs the SQL here. Nothing connects until first
use, which creates the tables; database failures are one-line ``StoreError``s, URL masked.

Full text: a generated ``tsvector`` column with the ``english`` configuration (stemmed and
without stop words, like the ``sqlite`` backend's porter tokenizer) and a GIN index, ranked by
``ts_rank_cd``. User text never acts as tsquery syntax: the server splits the query into
lexemes with ``to_tsvector`` and each lexeme is quoted into one OR query (``_FULLTEXT``).

Vectors (only with an embedder) are the other half, ``hub/memory/_postgres_vectors.py``: a
``memory_vectors`` table (pgvector where installed, else ``bytea`` ranked with numpy), embedded
later while the endpoint is down, as the ``vector`` backend does; search fuses both rankings
(``hub/memory/fusion.py``), or answers from full text alone while the endpoint is down.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import importlib.util
import json
import logging
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from typing import TYPE_CHECKING, ClassVar

import sqlalchemy as sa
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError

from hub.errors import ConfigError, StoreError
from hub.extensions import Manifest
from hub.memory._postgres_sql import COLUMNS, IN_SCOPES, first_line, memory_from_row, scope_params
from hub.memory._postgres_vectors import PostgresVectors
from hub.memory.base import Embedder, Hit, Memory, MemoryOptions, Scope, require_scope
from hub.memory.fusion import fuse_hits
from hub.redact import masked_url

if TYPE_CHECKING:  # sqlalchemy.ext.asyncio needs greenlet (the postgres extra): imported on first use
    from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

__all__ = ["PostgresMemory"]

log = logging.getLogger(__name__)

_TEXT_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS memories (
        seq bigserial PRIMARY KEY,
        id text NOT NULL UNIQUE,
        scope_kind text NOT NULL,
        scope_key text NOT NULL,
        text text NOT NULL,
        created_at timestamptz NOT NULL,
        source text NOT NULL,
        metadata jsonb NOT NULL DEFAULT '{}',
        tsv tsvector GENERATED ALWAYS AS (to_tsvector('english', text)) STORED
    )""",
    "CREATE INDEX IF NOT EXISTS memories_scope ON memories (scope_kind, scope_key, created_at)",
    "CREATE INDEX IF NOT EXISTS memories_tsv ON memories USING gin (tsv)",
)
_SCHEMA_LOCK = 0x6175746F68616E64  # pg_advisory_xact_lock key: two hubs' first uses take turns

# Each lexeme quoted as tsquery input wants it (quotes doubled, backslashes escaped), joined by |.
_FULLTEXT = rf"""WITH q AS (
    SELECT string_agg('''' || replace(replace(l, '\', '\\'), '''', '''''') || '''', ' | ')::tsquery AS query
    FROM unnest(tsvector_to_array(to_tsvector('english', :query))) AS l
)
SELECT {COLUMNS}, ts_rank_cd(m.tsv, q.query) AS score FROM memories m, q
WHERE m.tsv @@ q.query AND {IN_SCOPES} ORDER BY score DESC, m.seq DESC LIMIT :limit"""
_INSERT = (
    "INSERT INTO memories (id, scope_kind, scope_key, text, created_at, source, metadata)"
    " SELECT * FROM unnest(CAST(:ids AS text[]), CAST(:kinds AS text[]), CAST(:keys AS text[]),"
    " CAST(:texts AS text[]), CAST(:times AS timestamptz[]), CAST(:sources AS text[]), CAST(:metadata AS jsonb[]))"
    " ON CONFLICT (id) DO NOTHING RETURNING id, text"
)
_CONNECT_TIMEOUT = 10
"""Seconds to connect, unless the URL says: a server that never answers must not stall recall."""


def _insert_params(memories: Sequence[Memory]) -> dict[str, object]:
    return {
        "ids": [m.id for m in memories],
        "kinds": [m.scope.kind for m in memories],
        "keys": [m.scope.key for m in memories],
        "texts": [m.text for m in memories],
        "times": [m.created_at for m in memories],
        "sources": [m.source for m in memories],
        "metadata": [json.dumps(dict(m.metadata)) for m in memories],
    }


def _postgres_url(url: str) -> URL:
    """``url`` with psycopg 3 as its driver; ``ConfigError`` naming ``memory.url`` otherwise."""
    shown = masked_url(url) or "empty"
    try:
        parsed = make_url(url)
    except ArgumentError:
        parsed = None
    if parsed is None or parsed.get_backend_name() != "postgresql":
        raise ConfigError(
            f"memory.url: the postgres memory backend needs a PostgreSQL URL such as "
            f"postgresql+psycopg://user:password@host/dbname, not {shown}"
        )
    if importlib.util.find_spec("psycopg") is None or importlib.util.find_spec("greenlet") is None:
        raise ConfigError(
            "memory.backend: postgres needs psycopg 3 and greenlet; install them with pip install 'autohands[postgres]'"
        )
    query = {"connect_timeout": str(_CONNECT_TIMEOUT), **parsed.query}
    return parsed.set(drivername="postgresql+psycopg", query=query)


class PostgresMemory:
    """A ``MemoryBackend`` on PostgreSQL; an async context manager (``close`` on exit). It owns
    ``embedder`` (if any) and closes it with itself.

    Args:
        url: an SQLAlchemy PostgreSQL URL.
        embedder: turns texts into vectors; None: full text only.
        retry_seconds: while the embedding endpoint is down, the least time between two tries.
        catch_up_limit: most waiting memories one call embeds (``restore`` embeds all).
        clock: monotonic seconds (tests move it).
    """

    manifest: ClassVar[Manifest] = Manifest(
        id="postgres",
        name="PostgreSQL memory",
        description="Memories in PostgreSQL: full text, plus vectors (pgvector where installed) ranked together.",
        provides=("memory:postgres",),
        permissions=("net",),
    )

    @classmethod
    def from_options(cls, options: MemoryOptions) -> PostgresMemory:
        """The backend on ``options.url`` (``[memory] url``, else ``[store] url``).

        Raises:
            ConfigError: the URL is not PostgreSQL's, or psycopg is not installed.
        """
        return cls(options.url, embedder=options.embedder)

    def __init__(
        self,
        url: str,
        *,
        embedder: Embedder | None = None,
        retry_seconds: float = 30.0,
        catch_up_limit: int = 1024,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._url = _postgres_url(url)
        self._shown = masked_url(url)
        self._vectors = (
            None
            if embedder is None
            else PostgresVectors(
                embedder, self._begin, retry_seconds=retry_seconds, catch_up_limit=catch_up_limit, clock=clock
            )
        )
        self._engine: AsyncEngine | None = None
        self._ready = asyncio.Lock()
        self._schema_done = False
        self._closed = False

    async def __aenter__(self) -> PostgresMemory:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    @property
    def uses_pgvector(self) -> bool:
        """Whether vectors live in a pgvector column (known after first use)."""
        return self._vectors is not None and self._vectors.uses_pgvector

    async def close(self) -> None:
        """Close the pool and the embedder; safe to call twice."""
        if self._closed:
            return
        self._closed = True
        engine, self._engine = self._engine, None
        if engine is not None:
            await engine.dispose()
        if self._vectors is not None:
            await self._vectors.aclose()

    @contextlib.asynccontextmanager
    async def _begin(self) -> AsyncIterator[AsyncConnection]:
        """One transaction, the tables created on first use; database errors as ``StoreError``."""
        if self._closed:
            raise RuntimeError("this memory backend is closed")
        try:
            engine = await self._open()
            async with engine.begin() as conn:
                yield conn
        except DBAPIError as exc:
            raise StoreError(f"memory database {self._shown}: {first_line(exc)}") from exc

    async def _open(self) -> AsyncEngine:
        async with self._ready:
            if self._engine is None:
                # No prepared statements: a plan cached while the table was small outlived its
                # growth (bench/memory.py: search p50 35 ms at 100,000 memories, 7 ms without).
                prepare: dict[str, object] = {"prepare_threshold": None}
                from sqlalchemy.ext.asyncio import create_async_engine

                self._engine = create_async_engine(self._url, pool_pre_ping=True, pool_size=4, connect_args=prepare)
            if not self._schema_done:
                async with self._engine.begin() as conn:
                    await self._create_schema(conn)
                self._schema_done = True
            return self._engine

    async def _create_schema(self, conn: AsyncConnection) -> None:
        await conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _SCHEMA_LOCK})
        for statement in _TEXT_SCHEMA:
            await conn.execute(sa.text(statement))
        if self._vectors is None:
            return
        await self._vectors.create_table(conn)
        log.info(
            "memory: PostgreSQL at %s, vectors %s", self._shown, "in pgvector" if self.uses_pgvector else "as bytea"
        )

    async def store(
        self,
        text: str,
        *,
        scope: Scope,
        source: str,
        scopes: Sequence[Scope],
        metadata: Mapping[str, str] | None = None,
    ) -> Memory:
        """Keep ``text`` in ``scope`` and embed it, or leave it to be embedded later when the
        endpoint cannot; raises ``ScopeDenied`` unless ``scope`` is in ``scopes``."""
        require_scope(scope, scopes)
        memory = Memory.new(text, scope=scope, source=source, metadata=metadata)
        async with self._begin() as conn:
            await conn.execute(sa.text(_INSERT), _insert_params([memory]))
        if self._vectors is not None:
            await self._vectors.embed_new([(memory.id, memory.text)])
            await self._vectors.catch_up()
        return memory

    async def get(self, memory_id: str, *, scopes: Sequence[Scope]) -> Memory | None:
        """The memory, or ``None`` if there is none with that id in ``scopes``."""
        if not scopes:
            return None
        sql = f"SELECT {COLUMNS} FROM memories m WHERE m.id = :id AND {IN_SCOPES}"
        async with self._begin() as conn:
            row = (await conn.execute(sa.text(sql), {"id": memory_id, **scope_params(scopes)})).first()
        return None if row is None else memory_from_row(row)

    async def search(self, query: str, *, scopes: Sequence[Scope], limit: int = 5) -> builtins.list[Hit]:
        """The memories in ``scopes`` best matching ``query``: full text, fused by reciprocal rank
        with vector similarity when there is an embedder and it answers."""
        if not scopes or limit <= 0 or not query.strip():
            return []
        if self._vectors is None:
            async with self._begin() as conn:
                return await _fulltext(conn, query, scopes, limit)
        await self._vectors.catch_up()
        query_vector = await self._vectors.query(query)
        depth = max(4 * limit, 20)  # deeper candidate lists let fusion reorder, not just merge
        async with self._begin() as conn:  # one transaction: one pool checkout, one ping
            fulltext = await _fulltext(conn, query, scopes, depth)
            if query_vector is None:
                return fulltext[:limit]
            vector = await self._vectors.hits(conn, query_vector, scopes, depth)
        return fuse_hits(fulltext, vector, limit)

    async def delete(self, memory_id: str, *, scopes: Sequence[Scope]) -> bool:
        """Delete one memory (and its vectors); false if there is none with that id in ``scopes``."""
        if not scopes:
            return False
        sql = f"DELETE FROM memories m WHERE m.id = :id AND {IN_SCOPES}"
        async with self._begin() as conn:
            result = await conn.execute(sa.text(sql), {"id": memory_id, **scope_params(scopes)})
        return result.rowcount > 0

    async def list(self, *, scopes: Sequence[Scope], limit: int = 100) -> builtins.list[Memory]:
        """The memories in ``scopes``, newest first."""
        if not scopes or limit <= 0:
            return []
        sql = f"SELECT {COLUMNS} FROM memories m WHERE {IN_SCOPES} ORDER BY m.created_at DESC, m.seq DESC LIMIT :limit"
        async with self._begin() as conn:
            rows = (await conn.execute(sa.text(sql), {"limit": limit, **scope_params(scopes)})).all()
        return [memory_from_row(row) for row in rows]

    async def delete_scope(self, scope: Scope, *, scopes: Sequence[Scope]) -> int:
        """Delete every memory of ``scope``; how many went. ``ScopeDenied`` unless in ``scopes``."""
        require_scope(scope, scopes)
        sql = "DELETE FROM memories WHERE scope_kind = :kind AND scope_key = :key"
        async with self._begin() as conn:
            result = await conn.execute(sa.text(sql), {"kind": scope.kind, "key": scope.key})
        return result.rowcount

    async def scope_counts(self) -> builtins.list[tuple[Scope, int]]:
        """Every scope holding memories, with how many, by kind and key."""
        sql = (
            "SELECT scope_kind, scope_key, COUNT(*) AS n FROM memories"
            " GROUP BY scope_kind, scope_key ORDER BY scope_kind, scope_key"
        )
        async with self._begin() as conn:
            rows = (await conn.execute(sa.text(sql))).all()
        return [(Scope(row.scope_kind, row.scope_key), int(row.n)) for row in rows]

    async def restore(self, memories: Sequence[Memory]) -> int:
        """Insert ``memories`` as they are (ids already present are skipped), embed those added,
        a batch per request, then any other memory still waiting; while the endpoint is down,
        they wait for later. How many were added."""
        if not memories:
            return 0
        async with self._begin() as conn:
            rows = (await conn.execute(sa.text(_INSERT), _insert_params(memories))).all()
        added = [(str(row.id), str(row.text)) for row in rows]
        if self._vectors is not None:
            await self._vectors.embed_new(added)
            await self._vectors.catch_up(limit=None)
        return len(added)


async def _fulltext(conn: AsyncConnection, query: str, scopes: Sequence[Scope], limit: int) -> builtins.list[Hit]:
    params = {"query": query, "limit": limit, **scope_params(scopes)}
    rows = (await conn.execute(sa.text(_FULLTEXT), params)).all()
    return [Hit(memory=memory_from_row(row), score=float(row.score), via="fulltext") for row in rows]
