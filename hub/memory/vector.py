"""The ``vector`` memory backend: ``SqliteMemory`` plus embeddings, searched both ways at once.

Vectors sit beside the text in the same SQLite file: ``memory_vectors`` holds a memory's rowid,
the embedding model, the dimension and the float32 vector as a BLOB, and a trigger drops the
vector with its memory. Nearest neighbours come from a plain numpy matrix, loaded from that
table at the first search and kept in step by every write: exact cosine similarity, restricted
to the caller's scopes before the top k are taken. (sqlite-vec would keep the index on disk, but
it is a loadable extension, and this Python's ``sqlite3`` is built without
``enable_load_extension``.) The matrix lives on the backend's worker thread, like the
connection, so SQL and index change in one order.

``search`` is hybrid: BM25 (the parent's full text) and cosine similarity each rank candidates
and ``reciprocal_rank_fusion`` merges them. A hit's ``via`` says who found it — ``hybrid`` both,
else ``fulltext`` or ``vector`` — and its score is the fused one. ``search_fulltext`` and
``search_vector`` rank one way only (benchmarks compare the three).

The embedding endpoint may be down. ``store`` never fails for it: the memory is kept without a
vector (having no vector of the embedder's model is the mark) and embedded later. ``search``
then answers from full text alone. While it is down, calls try the endpoint again at most every
``retry_seconds``; the first call that embeds again also embeds the waiting memories (up to
``catch_up_limit`` per call, so no search waits long), inline: no task outlives ``close``. One
warning per outage, one info line when it ends. Vectors of another model than the embedder's
are ignored, and re-embedded the same way. A text the endpoint refuses for good (too long for
the model, say) is singled out and marked (a row of dimension 0 and an empty BLOB) so it is
not sent again; full text still finds it. ``hub/memory/_vectors.py:EmbeddingGate`` does the
calling, the checking and the logging, for the ``postgres`` backend too.
"""

from __future__ import annotations

import builtins
import logging
import sqlite3
import time
from collections.abc import Callable, Mapping, Sequence
from functools import partial
from pathlib import Path
from typing import ClassVar

import numpy as np

from hub.errors import ConfigError
from hub.extensions import Manifest
from hub.memory._vectors import Embedded, EmbeddingGate, Vectors, from_blobs, unit_rows
from hub.memory.base import Embedder, EmbeddingUnavailable, Hit, Memory, MemoryOptions, Scope
from hub.memory.fusion import fuse_hits
from hub.memory.sqlite import COLUMNS, SqliteMemory, memory_from_row, scope_filter

__all__ = ["VectorMemory"]

logger = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS memory_vectors (
    memory_rowid INTEGER PRIMARY KEY,
    model TEXT NOT NULL,
    dim INTEGER NOT NULL,
    vector BLOB NOT NULL
);
CREATE TRIGGER IF NOT EXISTS memory_vectors_ad AFTER DELETE ON memories BEGIN
    DELETE FROM memory_vectors WHERE memory_rowid = old.rowid;
END;
"""

_UNEMBEDDED = (
    " FROM memories m LEFT JOIN memory_vectors v ON v.memory_rowid = m.rowid AND v.model = ?"
    " WHERE v.memory_rowid IS NULL"
)
_BATCH = 256
"""Memories embedded per round of catching up (and per request, with the default embedder)."""


class _Index:
    """Unit vectors of one dimension with their memories' ids and scopes, searched exactly."""

    def __init__(self, dimensions: int) -> None:
        self.dimensions = dimensions
        self._vectors: Vectors = np.zeros((0, dimensions), dtype=np.float32)
        self._scopes = np.zeros(0, dtype=np.int32)
        self._ids: list[str] = []
        self._rows: dict[str, int] = {}
        self._codes: dict[Scope, int] = {}

    def __len__(self) -> int:
        return len(self._ids)

    def put(self, ids: Sequence[str], scopes: Sequence[Scope], vectors: Vectors) -> None:
        """Add or replace the vectors of ``ids``."""
        rows = np.empty(len(ids), dtype=np.int64)
        for n, memory_id in enumerate(ids):
            row = self._rows.get(memory_id)
            if row is None:
                row = self._rows[memory_id] = len(self._ids)
                self._ids.append(memory_id)
            rows[n] = row
        if len(self._ids) > len(self._vectors):  # grow by doubling: one store is O(1) on average
            capacity = max(len(self._ids), 2 * len(self._vectors), 64)
            self._vectors = np.resize(self._vectors, (capacity, self.dimensions))
            self._scopes = np.resize(self._scopes, capacity)
        self._vectors[rows] = unit_rows(vectors)
        self._scopes[rows] = [self._codes.setdefault(scope, len(self._codes)) for scope in scopes]

    def remove(self, memory_id: str) -> None:
        """Drop one memory's vector (the last row moves into its place)."""
        row = self._rows.pop(memory_id, None)
        if row is None:
            return
        last = len(self._ids) - 1
        if row != last:
            moved = self._ids[row] = self._ids[last]
            self._rows[moved] = row
            self._vectors[row] = self._vectors[last]
            self._scopes[row] = self._scopes[last]
        self._ids.pop()

    def remove_scope(self, scope: Scope) -> None:
        """Drop every vector of ``scope``."""
        code = self._codes.pop(scope, None)
        if code is None:
            return
        keep = np.flatnonzero(self._scopes[: len(self)] != code)
        self._vectors[: len(keep)] = self._vectors[keep]
        self._scopes[: len(keep)] = self._scopes[keep]
        self._ids = [self._ids[row] for row in keep]
        self._rows = {memory_id: row for row, memory_id in enumerate(self._ids)}

    def nearest(self, query: Vectors, scopes: Sequence[Scope], k: int) -> list[tuple[str, float]]:
        """The ``k`` memories of ``scopes`` most similar to ``query`` (similarity above 0), best
        first; the scope filter comes before the top k, so other scopes never crowd them out."""
        codes = [self._codes[scope] for scope in scopes if scope in self._codes]
        if not codes or k <= 0 or query.shape != (self.dimensions,):
            return []
        size = len(self)
        rows = np.flatnonzero(np.isin(self._scopes[:size], codes))
        # A few rows: multiply only those; most rows: one pass over the matrix beats the copy.
        # einsum, not @: it stays on this thread, where BLAS would wake its thread pool per query.
        matrix = self._vectors[rows] if 2 * len(rows) < size else self._vectors[:size]
        similar = np.einsum("ij,j->i", matrix, query)
        if len(matrix) != len(rows):
            similar = similar[rows]
        top = np.argpartition(-similar, k - 1)[:k] if len(rows) > k else np.arange(len(rows))
        top = top[np.argsort(-similar[top], kind="stable")]
        return [(self._ids[rows[n]], float(similar[n])) for n in top if similar[n] > 0]


class VectorMemory(SqliteMemory):
    """A ``MemoryBackend`` on one SQLite file searched by BM25 and embeddings together; it owns
    ``embedder`` and closes it with itself.

    Args:
        path: the SQLite file.
        embedder: turns texts into vectors.
        retry_seconds: while the endpoint is down, the least time between two tries.
        catch_up_limit: most waiting memories one call embeds (``restore`` embeds all).
        clock: monotonic seconds (tests move it).
    """

    manifest: ClassVar[Manifest] = Manifest(
        id="vector",
        name="Vector memory",
        description=(
            "Memories in an SQLite file, found by full text (BM25) and embeddings together; "
            "needs an OpenAI-compatible embedding endpoint."
        ),
        provides=("memory:vector",),
        permissions=("fs.write", "net"),
    )

    @classmethod
    def from_options(cls, options: MemoryOptions) -> VectorMemory:
        """The backend on ``options.path`` with ``options.embedder``.

        Raises:
            ConfigError: there is no embedder.
        """
        if options.embedder is None:
            raise ConfigError(
                "memory.embedding_provider and memory.embedding_model: the vector backend needs both "
                "(a [providers.NAME] with an OpenAI-compatible endpoint, and its embedding model)"
            )
        return cls(options.path, options.embedder)

    def __init__(
        self,
        path: Path,
        embedder: Embedder,
        *,
        retry_seconds: float = 30.0,
        catch_up_limit: int = 1024,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(path)
        self._embedder = embedder
        self._gate = EmbeddingGate(embedder, retry_seconds=retry_seconds, clock=clock, log=logger)
        self._catch_up_limit = catch_up_limit
        self._index: _Index | None = None  # the worker thread's, like the connection
        self._pending = True  # unknown until looked at: memories may predate the embeddings
        self._catching_up = False

    async def __aenter__(self) -> VectorMemory:
        return self

    def _open(self) -> sqlite3.Connection:
        db = super()._open()
        db.executescript(_SCHEMA)
        return db

    async def close(self) -> None:
        """Close the file, the worker thread and the embedder; safe to call twice."""
        await super().close()
        self._index = None
        await self._embedder.aclose()

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
        memory = await super().store(text, scope=scope, source=source, scopes=scopes, metadata=metadata)
        embedded = await self._gate.memories([(memory.id, text)])
        if embedded is None:
            self._pending = True
            return memory
        await self._run(partial(self._save, embedded=embedded))
        await self._catch_up()
        return memory

    async def search(self, query: str, *, scopes: Sequence[Scope], limit: int = 5) -> builtins.list[Hit]:
        """The memories in ``scopes`` best matching ``query`` by BM25 and by embedding, fused;
        by BM25 alone while the embedding endpoint is down."""
        if not scopes or limit <= 0:
            return []
        await self._catch_up()
        depth = max(4 * limit, 20)  # deeper candidate lists let fusion reorder, not just merge
        fulltext = await super().search(query, scopes=scopes, limit=depth)
        vector = await self._vector_hits(query, scopes, depth)
        if vector is None:
            return fulltext[:limit]
        return fuse_hits(fulltext, vector, limit)

    async def search_fulltext(self, query: str, *, scopes: Sequence[Scope], limit: int = 5) -> builtins.list[Hit]:
        """The memories in ``scopes`` best matching ``query`` by BM25 alone."""
        return await super().search(query, scopes=scopes, limit=limit)

    async def search_vector(self, query: str, *, scopes: Sequence[Scope], limit: int = 5) -> builtins.list[Hit]:
        """The memories in ``scopes`` whose embeddings are nearest ``query``'s, best first.

        Raises:
            EmbeddingUnavailable: the query could not be embedded.
        """
        if not scopes or limit <= 0:
            return []
        hits = await self._vector_hits(query, scopes, limit)
        if hits is None:
            raise EmbeddingUnavailable("the embedding endpoint is unavailable; see the log for the cause")
        return hits

    async def delete(self, memory_id: str, *, scopes: Sequence[Scope]) -> bool:
        """Delete one memory and its vector; false if there is none with that id in ``scopes``."""
        deleted = await super().delete(memory_id, scopes=scopes)
        if deleted:
            await self._run(lambda db: self._unindex(memory_id=memory_id))
        return deleted

    async def delete_scope(self, scope: Scope, *, scopes: Sequence[Scope]) -> int:
        """Delete every memory of ``scope`` with its vectors; how many went. ``ScopeDenied``
        unless ``scope`` is in ``scopes``."""
        count = await super().delete_scope(scope, scopes=scopes)
        await self._run(lambda db: self._unindex(scope=scope))
        return count

    async def restore(self, memories: Sequence[Memory]) -> int:
        """Insert ``memories`` as they are (ids already present are skipped), then embed every
        memory still waiting, ``_BATCH`` per request; those the endpoint refuses wait for later.
        How many were added."""
        added = await super().restore(memories)
        self._pending = True
        await self._catch_up(limit=None)
        return added

    async def pending_count(self) -> int:
        """How many memories have no vector of the embedder's model yet (the operator's view)."""
        sql = "SELECT COUNT(*)" + _UNEMBEDDED
        model = self._embedder.model
        return int(await self._run(lambda db: db.execute(sql, (model,)).fetchone()[0]))

    async def _catch_up(self, *, limit: int | None = 0) -> None:
        """Embed waiting memories, at most ``limit`` (0: ``catch_up_limit``; None: all), unless
        none wait, another call already does, or the endpoint is down."""
        if not self._pending or self._catching_up or self._gate.resting:
            return
        self._catching_up = True
        try:
            budget = self._catch_up_limit if limit == 0 else limit
            after = 0  # rowids only grow: each round reads on from the last, one pass in all
            while budget is None or budget > 0:
                size = _BATCH if budget is None else min(_BATCH, budget)
                waiting = await self._run(partial(self._unembedded, after=after, limit=size))
                if not waiting:
                    self._pending = False
                    return
                embedded = await self._gate.memories([(memory_id, text) for _, memory_id, text in waiting])
                if embedded is None:
                    return
                await self._run(partial(self._save, embedded=embedded))
                after = waiting[-1][0]
                budget = None if budget is None else budget - len(waiting)
        finally:
            self._catching_up = False

    async def _vector_hits(self, query: str, scopes: Sequence[Scope], k: int) -> list[Hit] | None:
        if not query.strip():
            return []  # endpoints refuse empty input, and nothing is near nothing
        vector = await self._gate.query(query)
        if vector is None:
            return None
        return await self._run(lambda db: self._nearest(db, vector, scopes, k))

    # The rest runs on the worker thread, which owns the connection and the index.

    def _unembedded(self, db: sqlite3.Connection, *, after: int, limit: int) -> list[tuple[int, str, str]]:
        """Rowid, id and text of the first ``limit`` waiting memories past rowid ``after``."""
        sql = "SELECT m.rowid, m.id, m.text" + _UNEMBEDDED + " AND m.rowid > ? ORDER BY m.rowid LIMIT ?"
        return [(row[0], row[1], row[2]) for row in db.execute(sql, (self._embedder.model, after, limit))]

    def _save(self, db: sqlite3.Connection, embedded: Embedded) -> None:
        """Write the vectors of the memories still there, and put them in the index if loaded;
        mark the refused ones (dimension 0: no vector, not waiting either)."""
        sql = (
            "INSERT OR REPLACE INTO memory_vectors (memory_rowid, model, dim, vector)"
            " SELECT rowid, ?, ?, ? FROM memories WHERE id = ?"
        )
        model = self._embedder.model
        db.executemany(sql, [(model, 0, b"", memory_id) for memory_id in embedded.refused])
        for memory_id in embedded.refused:
            self._unindex(memory_id=memory_id)
        ids, array = embedded.ids, embedded.vectors
        if not ids:
            return
        marks = ", ".join("?" for _ in ids)
        present_sql = f"SELECT id, scope_kind, scope_key FROM memories WHERE id IN ({marks})"
        present = {row["id"]: Scope(row["scope_kind"], row["scope_key"]) for row in db.execute(present_sql, ids)}
        keep = [n for n, memory_id in enumerate(ids) if memory_id in present]
        dimensions = array.shape[1]
        db.executemany(sql, [(model, dimensions, array[n].tobytes(), ids[n]) for n in keep])
        if self._index is not None and self._index.dimensions != dimensions:
            self._index = None  # the model's vectors changed length: reload what matches
        if self._index is not None:
            self._index.put([ids[n] for n in keep], [present[ids[n]] for n in keep], array[keep])

    def _unindex(self, *, memory_id: str = "", scope: Scope | None = None) -> None:
        if self._index is not None and memory_id:
            self._index.remove(memory_id)
        if self._index is not None and scope is not None:
            self._index.remove_scope(scope)

    def _loaded(self, db: sqlite3.Connection) -> _Index | None:
        """The index, read from ``memory_vectors`` on first use (the embedder's model only, and
        the first vector's dimension); None when no vector exists yet."""
        if self._index is None:
            cursor = db.cursor()
            cursor.row_factory = None  # plain tuples: this reads every vector
            rows = cursor.execute(
                "SELECT m.id, m.scope_kind, m.scope_key, v.dim, v.vector FROM memory_vectors v"
                " JOIN memories m ON m.rowid = v.memory_rowid WHERE v.model = ? AND v.dim > 0",
                (self._embedder.model,),
            ).fetchall()
            if not rows:
                return None
            dimensions = int(rows[0][3])
            rows = [row for row in rows if row[3] == dimensions]
            scopes: dict[tuple[str, str], Scope] = {}
            index = _Index(dimensions)
            index.put(
                [row[0] for row in rows],
                [
                    scopes.get((row[1], row[2])) or scopes.setdefault((row[1], row[2]), Scope(row[1], row[2]))
                    for row in rows
                ],
                from_blobs((row[4] for row in rows), dimensions),
            )
            self._index = index
        return self._index

    def _nearest(self, db: sqlite3.Connection, query: Vectors, scopes: Sequence[Scope], k: int) -> list[Hit]:
        index = self._loaded(db)
        ranked = [] if index is None else index.nearest(unit_rows(query), scopes, k)
        if not ranked:
            return []
        where, params = scope_filter(scopes)  # the index filters by scope; the SQL checks again
        marks = ", ".join("?" for _ in ranked)
        sql = f"SELECT {COLUMNS} FROM memories m WHERE m.id IN ({marks}) AND {where}"
        found = {
            row["id"]: memory_from_row(row) for row in db.execute(sql, [memory_id for memory_id, _ in ranked] + params)
        }
        return [Hit(memory=found[i], score=score, via="vector") for i, score in ranked if i in found]
