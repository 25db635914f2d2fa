"""Embeddings as numpy arrays, for the backends that rank by cosine similarity in Python
(``hub/memory/vector.py``, ``hub/memory/postgres.py`` without pgvector).

Kept apart from ``fusion.py`` so that importing ``hub.memory`` does not import numpy. Stored
vectors are float32, little-endian (``ndarray.tobytes()``, read back by ``from_blobs``): SQLite BLOBs
in the ``vector`` backend, ``bytea`` in the ``postgres`` one.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import numpy.typing as npt

from hub.memory.base import EmbeddingUnavailable

__all__ = ["FLOAT32_LE", "Vectors", "embedding_matrix", "from_blobs", "nearest_rows", "unit_rows"]

Vectors = npt.NDArray[np.float32]
FLOAT32_LE = "<f4"
"""The numpy dtype of a stored vector's elements."""


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
