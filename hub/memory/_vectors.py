"""Embeddings for the backends that keep vectors (``hub/memory/vector.py``, ``hub/memory/postgres.py``):
numpy helpers, and ``EmbeddingGate``, the one way both call their ``Embedder``.

Kept apart from ``fusion.py`` so that importing ``hub.memory`` does not import numpy. Stored
vectors are float32, little-endian (``ndarray.tobytes()``, read back by ``from_blobs``): SQLite BLOBs
in the ``vector`` backend, ``bytea`` in the ``postgres`` one.

The gate rides out outages: while the endpoint is down it is tried at most every
``retry_seconds`` (callers answer from full text meanwhile); one warning per outage, one info
line when it ends. It also tells an outage from texts the endpoint will never take (too long
for the model, content the server rejects: ``EmbeddingRefused``). Such a text would otherwise
fail every batch it is in, so one poisoned memory would turn vector search off for everyone.
When a request is refused, the gate embeds one plain text (``PROBE``): refused too, the endpoint
is what fails (a wrong model name, say) and that is an outage; embedded, the refused batch is
halved until each text it refuses stands alone, and those are given up (the backend marks them,
so they are not sent again; full text still finds them), one warning each naming the memory,
never its text.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from hub.memory.base import Embedder, EmbeddingRefused, EmbeddingUnavailable

__all__ = [
    "FLOAT32_LE",
    "PROBE",
    "Embedded",
    "EmbeddingGate",
    "Vectors",
    "embedding_matrix",
    "from_blobs",
    "nearest_rows",
    "unit_rows",
]

Vectors = npt.NDArray[np.float32]
FLOAT32_LE = "<f4"
"""The numpy dtype of a stored vector's elements."""
PROBE = "hello"
"""The text embedded to learn whether the endpoint works when it refused others."""


def unit_rows(vectors: npt.ArrayLike) -> Vectors:
    """Rows scaled to length 1 (zero rows stay zero), as float32; a single vector works too."""
    array = np.asarray(vectors, dtype=np.float32)
    norms = np.sqrt(np.einsum("...i,...i->...", array, array))[..., np.newaxis]
    norms[norms == 0] = 1.0
    unit: Vectors = array / norms
    return unit


def embedding_matrix(vectors: Sequence[Sequence[float]], expected: int) -> Vectors:
    """An embedder's answer as one float32 row per text; ``EmbeddingUnavailable`` unless it is
    ``expected`` vectors of one non-zero length (any ``Embedder`` may answer)."""
    try:
        matrix = np.asarray(vectors, dtype=FLOAT32_LE)
    except ValueError as exc:  # rows of unequal length
        raise EmbeddingUnavailable(
            f"the embedder answered {len(vectors)} vectors for {expected} texts, not all alike"
        ) from exc
    if matrix.ndim != 2 or len(matrix) != expected or matrix.shape[1] == 0:
        raise EmbeddingUnavailable(f"the embedder answered {len(vectors)} vectors for {expected} texts, not all alike")
    return matrix


def from_blobs(blobs: Iterable[bytes], dimensions: int) -> Vectors:
    """Stored vectors (each ``dimensions`` float32, little-endian) as the rows of one matrix."""
    matrix: Vectors = np.frombuffer(b"".join(blobs), dtype=FLOAT32_LE).reshape(-1, dimensions)
    return matrix


def nearest_rows(matrix: Vectors, query: Vectors, limit: int) -> list[tuple[int, float]]:
    """The ``limit`` rows of ``matrix`` most similar to ``query`` by cosine similarity, above 0,
    best first (ties in row order): row numbers with similarities."""
    if not len(matrix) or limit <= 0:
        return []
    # einsum, not @: it stays on this thread, where BLAS would wake its thread pool per query.
    similar = np.einsum("ij,j->i", unit_rows(matrix), unit_rows(query))
    order = np.argsort(-similar, kind="stable")[:limit]
    return [(int(n), float(similar[n])) for n in order if similar[n] > 0]


@dataclass(frozen=True, slots=True)
class Embedded:
    """What embedding some memories came to."""

    ids: tuple[str, ...]
    """The memories embedded, in the order of ``vectors``' rows."""
    vectors: Vectors
    """One float32 row per id in ``ids`` (no rows when none was embedded)."""
    refused: tuple[str, ...] = ()
    """The memories whose text the endpoint refuses for good: full text alone finds them."""


class EmbeddingGate:
    """``embedder`` as a backend calls it: answers checked, outages ridden out, refused texts
    singled out (see the module docstring). Logs on ``log``, the backend's logger.

    Args:
        embedder: the embedder (the backend closes it).
        retry_seconds: while the endpoint is down, the least time between two tries.
        clock: monotonic seconds.
        log: where the outage and refusal lines go.
    """

    def __init__(
        self,
        embedder: Embedder,
        *,
        retry_seconds: float,
        clock: Callable[[], float] = time.monotonic,
        log: logging.Logger,
    ) -> None:
        self._embedder = embedder
        self._retry_seconds = retry_seconds
        self._clock = clock
        self._log = log
        self._down = False
        self._next_try = 0.0

    @property
    def model(self) -> str:
        """The embedder's model."""
        return self._embedder.model

    @property
    def resting(self) -> bool:
        """Whether the endpoint is down and not yet due another try."""
        return self._down and self._clock() < self._next_try

    async def query(self, text: str) -> Vectors | None:
        """``text``'s vector; None while the endpoint is down, or when it refuses this text."""
        if self.resting:
            return None
        try:
            vectors = await self._embed([text])
        except EmbeddingRefused:
            await self._probe()  # up or down, this query goes by full text
            return None
        except EmbeddingUnavailable as exc:
            self._went_down(exc)
            return None
        self._came_up()
        vector: Vectors = vectors[0]
        return vector

    async def memories(self, items: Sequence[tuple[str, str]]) -> Embedded | None:
        """The vectors of ``items`` (memory id, text), and the ids whose text the endpoint refuses
        for good; None while it is down (they all wait)."""
        if self.resting:
            return None
        try:
            vectors = await self._embed([text for _, text in items])
        except EmbeddingRefused as exc:
            return await self._singled_out(items, exc) if await self._probe() else None
        except EmbeddingUnavailable as exc:
            self._went_down(exc)
            return None
        self._came_up()
        return Embedded(ids=tuple(memory_id for memory_id, _ in items), vectors=vectors)

    async def _embed(self, texts: Sequence[str]) -> Vectors:
        return embedding_matrix(await self._embedder.embed(texts), len(texts))

    async def _probe(self) -> bool:
        """Whether the endpoint embeds ``PROBE``: if not, what it refused came of an outage."""
        try:
            await self._embed([PROBE])
        except EmbeddingUnavailable as exc:
            self._went_down(exc)
            return False
        self._came_up()
        return True

    async def _singled_out(self, items: Sequence[tuple[str, str]], refusal: EmbeddingRefused) -> Embedded | None:
        """``items`` (refused together, though the endpoint works) embedded in halves, each text
        refused on its own given up; None if the endpoint fails meanwhile."""
        split = await self._halves(items, refusal)
        if split is None:
            return None
        embedded, refused = split
        for memory_id in refused:
            self._log.warning(
                "memory %s is not embedded: %s refuses its text for good (%s); full text still finds it",
                memory_id,
                self.model,
                "refused" if refused[memory_id] is None else f"HTTP {refused[memory_id]}",
            )
        dimensions = {len(vector) for _, vector in embedded}
        if len(dimensions) > 1:
            self._went_down(EmbeddingUnavailable("the embedder answered vectors of unequal length"))
            return None
        vectors = np.stack([v for _, v in embedded]) if embedded else np.zeros((0, 0), dtype=FLOAT32_LE)
        return Embedded(ids=tuple(i for i, _ in embedded), vectors=vectors, refused=tuple(refused))

    async def _halves(
        self, items: Sequence[tuple[str, str]], refusal: EmbeddingRefused
    ) -> tuple[list[tuple[str, Vectors]], dict[str, int | None]] | None:
        """``items``, refused by ``refusal``, split in two, each half embedded or split again
        while refused: the vectors, and each text refused alone with its HTTP status. (Halving,
        not a request per text: one poisoned text in a batch of 256 costs 16 requests, not 256.)"""
        if len(items) == 1:
            return [], {items[0][0]: refusal.status}
        embedded: list[tuple[str, Vectors]] = []
        refused: dict[str, int | None] = {}
        middle = len(items) // 2
        for half in (items[:middle], items[middle:]):
            try:
                vectors = await self._embed([text for _, text in half])
            except EmbeddingRefused as exc:
                split = await self._halves(half, exc)
                if split is None:
                    return None
                embedded += split[0]
                refused |= split[1]
            except EmbeddingUnavailable as exc:
                self._went_down(exc)
                return None
            else:
                embedded += zip((memory_id for memory_id, _ in half), vectors, strict=True)
        return embedded, refused

    def _went_down(self, exc: EmbeddingUnavailable) -> None:
        if not self._down:
            self._log.warning(
                "memory embeddings are unavailable, searching full text only until they are back: %s", exc
            )
        self._down, self._next_try = True, self._clock() + self._retry_seconds

    def _came_up(self) -> None:
        if self._down:
            self._log.info("memory embeddings are back; waiting memories are embedded as the memory is used")
            self._down = False
