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

Vectors (only with an embedder): ``memory_vectors`` keeps one embedding per memory and model.
With pgvector the column is ``vector`` and ``<=>`` ranks; without it, ``bytea`` (float32,
little-endian, like the ``vector`` backend's BLOBs: ``hub/memory/_vectors.py``) and numpy
ranks in Python. Bytes, not ``real[]``: psycopg reads an array as text, and parsing it took ten
times the query. A ``real[]`` table left by an earlier version is dropped and made again (its
memories wait to be embedded again). Either way the ranking is exact over the caller's scopes,
filtered in SQL first (an approximate index would filter after ranking and lose hits), and the
column has no fixed dimension, so a new model's vectors sit beside the old ones (a search
compares only its model's). The tests cannot exercise the pgvector branch (Debian's main
archive has no pgvector).

The embedding endpoint may be down; this behaves as the ``vector`` backend does
(``hub/memory/vector.py``; both fuse with ``hub/memory/fusion.py``): ``store`` never fails for
it, the memory waits without a vector and is embedded later (a later store, search or restore
catches up, inline; ``restore`` embeds what it adds, a batch per request); search answers from
full text alone; while down, the endpoint is tried at most every ``retry_seconds``; one
warning per outage, one info line when it ends.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import importlib.util
import json
import logging
import secrets
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import ClassVar

import sqlalchemy as sa
from sqlalchemy import Row
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from hub.errors import ConfigError, StoreError
from hub.extensions import Manifest
from hub.memory._vectors import Vectors, embedding_matrix, from_blobs, nearest_rows
from hub.memory.base import Embedder, EmbeddingUnavailable, Hit, Memory, MemoryOptions, Scope, require_scope
from hub.memory.fusion import fuse_hits
from hub.redact import masked_url

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
_VECTOR_TABLE = """CREATE TABLE IF NOT EXISTS memory_vectors (
    memory_id text NOT NULL REFERENCES memories (id) ON DELETE CASCADE,
    model text NOT NULL,
    embedding {kind} NOT NULL,
    PRIMARY KEY (memory_id, model)
)"""
_SCHEMA_LOCK = 0x6175746F68616E64  # pg_advisory_xact_lock key: two hubs' first uses take turns

_COLUMNS = "m.id, m.scope_kind, m.scope_key, m.text, m.created_at, m.source, m.metadata"
_IN_SCOPES = "(m.scope_kind, m.scope_key) IN (SELECT * FROM unnest(CAST(:kinds AS text[]), CAST(:keys AS text[])))"
# Each lexeme quoted as tsquery input wants it (quotes doubled, backslashes escaped), joined by |.
_FULLTEXT = rf"""WITH q AS (
    SELECT string_agg('''' || replace(replace(l, '\', '\\'), '''', '''''') || '''', ' | ')::tsquery AS query
    FROM unnest(tsvector_to_array(to_tsvector('english', :query))) AS l
)
SELECT {_COLUMNS}, ts_rank_cd(m.tsv, q.query) AS score FROM memories m, q
WHERE m.tsv @@ q.query AND {_IN_SCOPES} ORDER BY score DESC, m.seq DESC LIMIT :limit"""
_INSERT = (
    "INSERT INTO memories (id, scope_kind, scope_key, text, created_at, source, metadata)"
    " SELECT * FROM unnest(CAST(:ids AS text[]), CAST(:kinds AS text[]), CAST(:keys AS text[]),"
    " CAST(:texts AS text[]), CAST(:times AS timestamptz[]), CAST(:sources AS text[]), CAST(:metadata AS jsonb[]))"
    " ON CONFLICT (id) DO NOTHING RETURNING id, text"
)

# seq only grows: each round of catching up reads on from the last, one pass over the table in all.
_UNEMBEDDED = (
    "SELECT m.seq, m.id, m.text FROM memories m WHERE m.seq > :after AND NOT EXISTS (SELECT 1 FROM memory_vectors v"
    " WHERE v.memory_id = m.id AND v.model = :model) ORDER BY m.seq LIMIT :limit"
)
_BATCH = 256
"""Memories embedded per round of catching up (as the ``vector`` backend)."""
_CONNECT_TIMEOUT = 10
"""Seconds to connect, unless the URL says: a server that never answers must not stall recall."""


def _scope_params(scopes: Sequence[Scope]) -> dict[str, object]:
    unique = list(dict.fromkeys(scopes))
    return {"kinds": [scope.kind for scope in unique], "keys": [scope.key for scope in unique]}


def _memory(row: Row[tuple[object, ...]]) -> Memory:
    values = row._mapping
    created: datetime = values["created_at"]
    return Memory(
        id=str(values["id"]),
        scope=Scope(values["scope_kind"], str(values["scope_key"])),
        text=str(values["text"]),
        created_at=created.astimezone(UTC),
        source=str(values["source"]),
        metadata={str(k): str(v) for k, v in dict(values["metadata"]).items()},
    )


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


def _first_line(exc: DBAPIError) -> str:
    # str(exc) would add the statement and its parameters: memory text stays out of errors.
    lines = str(exc.orig).strip().splitlines()
    return lines[0] if lines else type(exc.orig).__name__


def _vector_literal(vector: Vectors) -> str:
    """pgvector's text form of a vector."""
    return "[" + ",".join(repr(float(x)) for x in vector) + "]"


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
        self._embedder = embedder
        self._retry_seconds = retry_seconds
        self._catch_up_limit = catch_up_limit
        self._clock = clock
        self._engine: AsyncEngine | None = None
        self._ready = asyncio.Lock()
        self._schema_done = False
        self._pgvector = False
        self._closed = False
        self._down = False
        self._next_try = 0.0
        self._pending = True  # unknown until looked at: memories may predate the embeddings
        self._catching_up = False

    async def __aenter__(self) -> PostgresMemory:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    @property
    def uses_pgvector(self) -> bool:
        """Whether vectors live in a pgvector column (known after first use)."""
        return self._pgvector

    async def close(self) -> None:
        """Close the pool and the embedder; safe to call twice."""
        if self._closed:
            return
        self._closed = True
        engine, self._engine = self._engine, None
        if engine is not None:
            await engine.dispose()
        if self._embedder is not None:
            await self._embedder.aclose()

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
            raise StoreError(f"memory database {self._shown}: {_first_line(exc)}") from exc

    async def _open(self) -> AsyncEngine:
        async with self._ready:
            if self._engine is None:
                # No prepared statements: a plan cached while the table was small outlived its
                # growth (bench/memory.py: search p50 35 ms at 100,000 memories, 7 ms without).
                prepare: dict[str, object] = {"prepare_threshold": None}
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
        if self._embedder is None:
            return
        wanted = "vector" if await _enable_pgvector(conn) else "bytea"
        await conn.execute(sa.text(_VECTOR_TABLE.format(kind=wanted)))
        kind = await conn.scalar(
            sa.text(
                "SELECT format_type(atttypid, atttypmod) FROM pg_attribute"
                " WHERE attrelid = 'memory_vectors'::regclass AND attname = 'embedding'"
            )
        )
        if kind not in ("vector", "bytea"):  # real[], never released: its vectors are just embedded again
            log.info("memory: replacing the vectors table (embedding %s); memories are embedded again", kind)
            await conn.execute(sa.text("DROP TABLE memory_vectors"))
            await conn.execute(sa.text(_VECTOR_TABLE.format(kind=wanted)))
            kind = wanted
        self._pgvector = kind == "vector"  # a table made before pgvector arrived stays bytea
        log.info("memory: PostgreSQL at %s, vectors %s", self._shown, "in pgvector" if self._pgvector else "as bytea")

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
        memory = Memory(
            id=secrets.token_hex(6),
            scope=scope,
            text=text,
            created_at=datetime.now(UTC),
            source=source,
            metadata=dict(metadata or {}),
        )
        async with self._begin() as conn:
            await conn.execute(sa.text(_INSERT), _insert_params([memory]))
        if self._embedder is not None:
            await self._embed_new([(memory.id, memory.text)])
            await self._catch_up()
        return memory

    async def get(self, memory_id: str, *, scopes: Sequence[Scope]) -> Memory | None:
        """The memory, or ``None`` if there is none with that id in ``scopes``."""
        if not scopes:
            return None
        sql = f"SELECT {_COLUMNS} FROM memories m WHERE m.id = :id AND {_IN_SCOPES}"
        async with self._begin() as conn:
            row = (await conn.execute(sa.text(sql), {"id": memory_id, **_scope_params(scopes)})).first()
        return None if row is None else _memory(row)

    async def search(self, query: str, *, scopes: Sequence[Scope], limit: int = 5) -> builtins.list[Hit]:
        """The memories in ``scopes`` best matching ``query``: full text, fused by reciprocal rank
        with vector similarity when there is an embedder and it answers."""
        if not scopes or limit <= 0 or not query.strip():
            return []
        if self._embedder is None:
            async with self._begin() as conn:
                return await _fulltext(conn, query, scopes, limit)
        await self._catch_up()
        query_vectors = await self._embed([query])
        depth = max(4 * limit, 20)  # deeper candidate lists let fusion reorder, not just merge
        async with self._begin() as conn:  # one transaction: one pool checkout, one ping
            fulltext = await _fulltext(conn, query, scopes, depth)
            if query_vectors is None:
                return fulltext[:limit]
            vector = await self._by_vector(conn, query_vectors[0], scopes, depth)
        return fuse_hits(fulltext, vector, limit)

    async def _by_vector(
        self, conn: AsyncConnection, vector: Vectors, scopes: Sequence[Scope], limit: int
    ) -> builtins.list[Hit]:
        """The memories in ``scopes`` nearest ``vector`` (cosine similarity above 0), nearest first."""
        assert self._embedder is not None
        params = {"model": self._embedder.model, "dims": len(vector), "limit": limit, **_scope_params(scopes)}
        joined = f"FROM memory_vectors v JOIN memories m ON m.id = v.memory_id WHERE v.model = :model AND {_IN_SCOPES}"
        if self._pgvector:
            distance = "(v.embedding <=> CAST(:vector AS vector))"
            sql = (
                f"SELECT {_COLUMNS}, 1 - {distance} AS score {joined} AND vector_dims(v.embedding) = :dims"
                f" AND {distance} < 1 ORDER BY {distance} LIMIT :limit"
            )
            rows = (await conn.execute(sa.text(sql), {**params, "vector": _vector_literal(vector)})).all()
            return [Hit(memory=_memory(row), score=float(row.score), via="vector") for row in rows]
        # Ids and vectors only: the ranking reads every vector in scope, the caller a few memories.
        sql = f"SELECT v.memory_id, v.embedding {joined} AND octet_length(v.embedding) = 4 * :dims"
        rows = (await conn.execute(sa.text(sql), params)).all()
        matrix = from_blobs((row.embedding for row in rows), len(vector))
        ranked = [(str(rows[n].memory_id), score) for n, score in nearest_rows(matrix, vector, limit)]
        if not ranked:
            return []
        sql = f"SELECT {_COLUMNS} FROM memories m WHERE m.id = ANY(CAST(:ids AS text[])) AND {_IN_SCOPES}"
        params = {"ids": [memory_id for memory_id, _ in ranked], **_scope_params(scopes)}
        found = {row.id: _memory(row) for row in await conn.execute(sa.text(sql), params)}
        return [Hit(memory=found[i], score=score, via="vector") for i, score in ranked if i in found]

    async def _embed(self, texts: Sequence[str]) -> Vectors | None:
        """``texts``' vectors, a row each, or None while the endpoint is down (tried at most every
        ``retry_seconds``); logs the start and the end of an outage once each."""
        assert self._embedder is not None
        if self._down and self._clock() < self._next_try:
            return None
        try:
            vectors = embedding_matrix(await self._embedder.embed(texts), len(texts))
        except EmbeddingUnavailable as exc:
            if not self._down:
                log.warning("memory embeddings are unavailable, searching full text only until they are back: %s", exc)
            self._down, self._next_try = True, self._clock() + self._retry_seconds
            return None
        if self._down:
            log.info("memory embeddings are back; waiting memories are embedded as the memory is used")
            self._down = False
        return vectors

    async def _catch_up(self, *, limit: int | None = 0) -> None:
        """Embed waiting memories, at most ``limit`` (0: ``catch_up_limit``; None: all), unless
        none wait, another call already does, or the endpoint is down."""
        if self._embedder is None or not self._pending or self._catching_up:
            return
        if self._down and self._clock() < self._next_try:
            return
        # Cleared first: a memory left waiting meanwhile (maybe behind the cursor) sets it again.
        self._catching_up, self._pending, done = True, False, False
        try:
            budget = self._catch_up_limit if limit == 0 else limit
            after = 0
            while budget is None or budget > 0:
                size = _BATCH if budget is None else min(_BATCH, budget)
                async with self._begin() as conn:
                    params = {"model": self._embedder.model, "after": after, "limit": size}
                    waiting = (await conn.execute(sa.text(_UNEMBEDDED), params)).all()
                if not waiting:
                    done = True
                    return
                vectors = await self._embed([str(row.text) for row in waiting])
                if vectors is None:
                    return
                await self._save_vectors([str(row.id) for row in waiting], vectors)
                after = int(waiting[-1].seq)
                budget = None if budget is None else budget - len(waiting)
        finally:
            self._catching_up = False
            self._pending = self._pending or not done

    async def _save_vectors(self, ids: Sequence[str], vectors: Vectors) -> None:
        """Write the vectors of the memories still there (one may have gone meanwhile)."""
        assert self._embedder is not None
        # One statement per batch: a row per statement (executemany) took 1.7 times as long.
        value, kind = ("CAST(u.e AS vector)", "text[]") if self._pgvector else ("u.e", "bytea[]")
        sql = (
            f"INSERT INTO memory_vectors (memory_id, model, embedding) SELECT m.id, :model, {value} FROM unnest("
            f"CAST(:ids AS text[]), CAST(:embeddings AS {kind})) AS u(id, e) JOIN memories m ON m.id = u.id"
            " ON CONFLICT (memory_id, model) DO UPDATE SET embedding = EXCLUDED.embedding"
        )
        embeddings = [_vector_literal(v) if self._pgvector else v.tobytes() for v in vectors]
        params = {"model": self._embedder.model, "ids": list(ids), "embeddings": embeddings}
        async with self._begin() as conn:
            await conn.execute(sa.text(sql), params)

    async def delete(self, memory_id: str, *, scopes: Sequence[Scope]) -> bool:
        """Delete one memory (and its vectors); false if there is none with that id in ``scopes``."""
        if not scopes:
            return False
        sql = f"DELETE FROM memories m WHERE m.id = :id AND {_IN_SCOPES}"
        async with self._begin() as conn:
            result = await conn.execute(sa.text(sql), {"id": memory_id, **_scope_params(scopes)})
        return result.rowcount > 0

    async def list(self, *, scopes: Sequence[Scope], limit: int = 100) -> builtins.list[Memory]:
        """The memories in ``scopes``, newest first."""
        if not scopes or limit <= 0:
            return []
        sql = (
            f"SELECT {_COLUMNS} FROM memories m WHERE {_IN_SCOPES} ORDER BY m.created_at DESC, m.seq DESC LIMIT :limit"
        )
        async with self._begin() as conn:
            rows = (await conn.execute(sa.text(sql), {"limit": limit, **_scope_params(scopes)})).all()
        return [_memory(row) for row in rows]

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
        ``_BATCH`` per request, then any other memory still waiting; those the endpoint refuses
        wait for later. How many were added."""
        if not memories:
            return 0
        async with self._begin() as conn:
            rows = (await conn.execute(sa.text(_INSERT), _insert_params(memories))).all()
        added = [(str(row.id), str(row.text)) for row in rows]
        if self._embedder is not None:
            await self._embed_new(added)
            await self._catch_up(limit=None)
        return len(added)

    async def _embed_new(self, added: Sequence[tuple[str, str]]) -> None:
        """Embed memories just ``added`` (id, text), ``_BATCH`` per request (``_catch_up`` would
        look for them); when the endpoint refuses, they wait."""
        for start in range(0, len(added), _BATCH):
            batch = added[start : start + _BATCH]
            vectors = await self._embed([text for _, text in batch])
            if vectors is None:
                self._pending = True
                return
            await self._save_vectors([memory_id for memory_id, _ in batch], vectors)


async def _enable_pgvector(conn: AsyncConnection) -> bool:
    """Whether the ``vector`` extension is (now) installed in this database."""
    available = await conn.scalar(
        sa.text("SELECT EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'vector')")
    )
    if not available:
        return False
    try:
        async with conn.begin_nested():
            await conn.execute(sa.text("CREATE EXTENSION IF NOT EXISTS vector"))
    except DBAPIError as exc:
        log.warning(
            "memory: pgvector is available but could not be enabled (%s); vectors kept as real[]", _first_line(exc)
        )
        return False
    return True


async def _fulltext(conn: AsyncConnection, query: str, scopes: Sequence[Scope], limit: int) -> builtins.list[Hit]:
    params = {"query": query, "limit": limit, **_scope_params(scopes)}
    rows = (await conn.execute(sa.text(_FULLTEXT), params)).all()
    return [Hit(memory=_memory(row), score=float(row.score), via="fulltext") for row in rows]
