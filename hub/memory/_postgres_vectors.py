"""The ``postgres`` memory backend's vectors (``hub/memory/postgres.py`` owns one
``PostgresVectors`` when it has an embedder): the ``memory_vectors`` table, embedding and
catching up, and the vector ranking.

``memory_vectors`` keeps one embedding per memory and model. With pgvector the column is
``vector`` and ``<=>`` ranks; without it, ``bytea`` (float32, little-endian, like the ``vector``
backend's BLOBs: ``hub/memory/_vectors.py``) and numpy ranks in Python. Bytes, not ``real[]``:
psycopg reads an array as text, and parsing it took ten times the query. A ``real[]`` table left
by an earlier version is dropped and made again (its memories wait to be embedded again). Either
way the ranking is exact over the caller's scopes, filtered in SQL first (an approximate index
would filter after ranking and lose hits), and the column has no fixed dimension, so a new
model's vectors sit beside the old ones (a search compares only its model's). A NULL embedding
marks a memory whose text the model refuses for good (too long for it, say): it is not sent
again, and full text still finds it. The tests cannot exercise the pgvector branch (Debian's
main archive has no pgvector).

The embedding endpoint may be down; this behaves as the ``vector`` backend does
(``hub/memory/vector.py``; both call the embedder through ``_vectors.EmbeddingGate``): ``store``
never fails for it, the memory waits without a vector and is embedded later (a later store,
search or restore catches up, inline; ``restore`` embeds what it adds, a batch per request);
search answers from full text alone; while down, the endpoint is tried at most every
``retry_seconds``; one warning per outage, one info line when it ends.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError

from hub.memory._postgres_sql import COLUMNS, IN_SCOPES, Begin, first_line, memory_from_row, scope_params
from hub.memory._vectors import Embedded, EmbeddingGate, Vectors, from_blobs, nearest_rows
from hub.memory.base import Embedder, Hit, Scope

if TYPE_CHECKING:  # needs greenlet (the postgres extra)
    from sqlalchemy.ext.asyncio import AsyncConnection

__all__ = ["BATCH", "PostgresVectors"]

log = logging.getLogger("hub.memory.postgres")  # the backend's name: what operators filter by

_VECTOR_TABLE = """CREATE TABLE IF NOT EXISTS memory_vectors (
    memory_id text NOT NULL REFERENCES memories (id) ON DELETE CASCADE,
    model text NOT NULL,
    embedding {kind},
    PRIMARY KEY (memory_id, model)
)"""
# seq only grows: each round of catching up reads on from the last, one pass over the table in all.
_UNEMBEDDED = (
    "SELECT m.seq, m.id, m.text FROM memories m WHERE m.seq > :after AND NOT EXISTS (SELECT 1 FROM memory_vectors v"
    " WHERE v.memory_id = m.id AND v.model = :model) ORDER BY m.seq LIMIT :limit"
)
_REFUSED = (
    "INSERT INTO memory_vectors (memory_id, model, embedding) SELECT m.id, :model, NULL FROM memories m"
    " WHERE m.id = ANY(CAST(:ids AS text[])) ON CONFLICT (memory_id, model) DO UPDATE SET embedding = NULL"
)
BATCH = 256
"""Memories embedded per request, catching up or restoring (as the ``vector`` backend)."""


def _vector_literal(vector: Vectors) -> str:
    """pgvector's text form of a vector."""
    return "[" + ",".join(repr(float(x)) for x in vector) + "]"


class PostgresVectors:
    """The vectors of one ``PostgresMemory``; it owns ``embedder`` and closes it (``aclose``).

    Args:
        embedder: turns texts into vectors.
        begin: opens one of the backend's transactions.
        retry_seconds: while the embedding endpoint is down, the least time between two tries.
        catch_up_limit: most waiting memories one call embeds (``catch_up(limit=None)``: all).
        clock: monotonic seconds (tests move it).
    """

    def __init__(
        self,
        embedder: Embedder,
        begin: Begin,
        *,
        retry_seconds: float,
        catch_up_limit: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._embedder = embedder
        self._gate = EmbeddingGate(embedder, retry_seconds=retry_seconds, clock=clock, log=log)
        self._begin = begin
        self._catch_up_limit = catch_up_limit
        self._pgvector = False
        self._pending = True  # unknown until looked at: memories may predate the embeddings
        self._catching_up = False

    @property
    def uses_pgvector(self) -> bool:
        """Whether vectors live in a pgvector column (known once ``create_table`` ran)."""
        return self._pgvector

    async def aclose(self) -> None:
        """Close the embedder."""
        await self._embedder.aclose()

    async def create_table(self, conn: AsyncConnection) -> None:
        """Make ``memory_vectors`` (in pgvector if it can be enabled), or bring an older one up to date."""
        wanted = "vector" if await _enable_pgvector(conn) else "bytea"
        await conn.execute(sa.text(_VECTOR_TABLE.format(kind=wanted)))
        column = (
            await conn.execute(
                sa.text(
                    "SELECT format_type(atttypid, atttypmod) AS kind, attnotnull FROM pg_attribute"
                    " WHERE attrelid = 'memory_vectors'::regclass AND attname = 'embedding'"
                )
            )
        ).one()
        kind = column.kind
        if kind not in ("vector", "bytea"):  # real[], never released: its vectors are just embedded again
            log.info("memory: replacing the vectors table (embedding %s); memories are embedded again", kind)
            await conn.execute(sa.text("DROP TABLE memory_vectors"))
            await conn.execute(sa.text(_VECTOR_TABLE.format(kind=wanted)))
            kind = wanted
        elif column.attnotnull:  # made before refused texts were marked with NULL
            await conn.execute(sa.text("ALTER TABLE memory_vectors ALTER COLUMN embedding DROP NOT NULL"))
        self._pgvector = kind == "vector"  # a table made before pgvector arrived stays bytea

    async def query(self, text: str) -> Vectors | None:
        """``text``'s vector, or None while the endpoint is down (or refuses this text)."""
        return await self._gate.query(text)

    async def hits(self, conn: AsyncConnection, vector: Vectors, scopes: Sequence[Scope], limit: int) -> list[Hit]:
        """The memories in ``scopes`` nearest ``vector`` (cosine similarity above 0), nearest first."""
        params = {"model": self._gate.model, "dims": len(vector), "limit": limit, **scope_params(scopes)}
        joined = f"FROM memory_vectors v JOIN memories m ON m.id = v.memory_id WHERE v.model = :model AND {IN_SCOPES}"
        # The dimension's condition also leaves out refused memories (a NULL embedding).
        if self._pgvector:
            distance = "(v.embedding <=> CAST(:vector AS vector))"
            sql = (
                f"SELECT {COLUMNS}, 1 - {distance} AS score {joined} AND vector_dims(v.embedding) = :dims"
                f" AND {distance} < 1 ORDER BY {distance} LIMIT :limit"
            )
            rows = (await conn.execute(sa.text(sql), {**params, "vector": _vector_literal(vector)})).all()
            return [Hit(memory=memory_from_row(row), score=float(row.score), via="vector") for row in rows]
        # Ids and vectors only: the ranking reads every vector in scope, the caller a few memories.
        sql = f"SELECT v.memory_id, v.embedding {joined} AND octet_length(v.embedding) = 4 * :dims"
        rows = (await conn.execute(sa.text(sql), params)).all()
        matrix = from_blobs((row.embedding for row in rows), len(vector))
        ranked = [(str(rows[n].memory_id), score) for n, score in nearest_rows(matrix, vector, limit)]
        if not ranked:
            return []
        sql = f"SELECT {COLUMNS} FROM memories m WHERE m.id = ANY(CAST(:ids AS text[])) AND {IN_SCOPES}"
        params = {"ids": [memory_id for memory_id, _ in ranked], **scope_params(scopes)}
        found = {row.id: memory_from_row(row) for row in await conn.execute(sa.text(sql), params)}
        return [Hit(memory=found[i], score=score, via="vector") for i, score in ranked if i in found]

    async def embed_new(self, added: Sequence[tuple[str, str]]) -> None:
        """Embed memories just ``added`` (id, text), ``BATCH`` per request (``catch_up`` would
        look for them); when the endpoint cannot, they wait."""
        for start in range(0, len(added), BATCH):
            embedded = await self._gate.memories(added[start : start + BATCH])
            if embedded is None:
                self._pending = True
                return
            await self._save(embedded)

    async def catch_up(self, *, limit: int | None = 0) -> None:
        """Embed waiting memories, at most ``limit`` (0: ``catch_up_limit``; None: all), unless
        none wait, another call already does, or the endpoint is down."""
        if not self._pending or self._catching_up or self._gate.resting:
            return
        # Cleared first: a memory left waiting meanwhile (maybe behind the cursor) sets it again.
        self._catching_up, self._pending, done = True, False, False
        try:
            budget = self._catch_up_limit if limit == 0 else limit
            after = 0
            while budget is None or budget > 0:
                size = BATCH if budget is None else min(BATCH, budget)
                async with self._begin() as conn:
                    params = {"model": self._gate.model, "after": after, "limit": size}
                    waiting = (await conn.execute(sa.text(_UNEMBEDDED), params)).all()
                if not waiting:
                    done = True
                    return
                embedded = await self._gate.memories([(str(row.id), str(row.text)) for row in waiting])
                if embedded is None:
                    return
                await self._save(embedded)
                after = int(waiting[-1].seq)
                budget = None if budget is None else budget - len(waiting)
        finally:
            self._catching_up = False
            self._pending = self._pending or not done

    async def _save(self, embedded: Embedded) -> None:
        """Write the vectors of the memories still there (one may have gone meanwhile), and mark
        the refused ones."""
        # One statement per batch: a row per statement (executemany) took 1.7 times as long.
        value, kind = ("CAST(u.e AS vector)", "text[]") if self._pgvector else ("u.e", "bytea[]")
        sql = (
            f"INSERT INTO memory_vectors (memory_id, model, embedding) SELECT m.id, :model, {value} FROM unnest("
            f"CAST(:ids AS text[]), CAST(:embeddings AS {kind})) AS u(id, e) JOIN memories m ON m.id = u.id"
            " ON CONFLICT (memory_id, model) DO UPDATE SET embedding = EXCLUDED.embedding"
        )
        embeddings = [_vector_literal(v) if self._pgvector else v.tobytes() for v in embedded.vectors]
        async with self._begin() as conn:
            if embedded.ids:
                params = {"model": self._gate.model, "ids": list(embedded.ids), "embeddings": embeddings}
                await conn.execute(sa.text(sql), params)
            if embedded.refused:
                await conn.execute(sa.text(_REFUSED), {"model": self._gate.model, "ids": list(embedded.refused)})


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
            "memory: pgvector is available but could not be enabled (%s); vectors kept as bytea", first_line(exc)
        )
        return False
    return True
