"""Reciprocal rank fusion: one ranking from several (full text and vector, for hybrid search).

Each list contributes ``1 / (k + rank)`` to an id's score, rank counted from 1, so an id high in
any list rises and one found by both rises most; scores need not be comparable across lists.
``k = 60`` is the constant of Cormack, Clarke and Büttcher's paper (SIGIR 2009).

``fuse_hits`` is the hybrid search of the ``vector`` and ``postgres`` backends: their full-text
and vector hits fused, each hit's ``via`` saying which ranking(s) found it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from hub.memory.base import Hit, HitKind

__all__ = ["RRF_K", "fuse_hits", "reciprocal_rank_fusion"]

RRF_K = 60


def reciprocal_rank_fusion(rankings: Iterable[Sequence[str]], *, k: int = RRF_K) -> list[tuple[str, float]]:
    """The ids of ``rankings`` (each best first) with their fused scores, best first.

    Ties keep the order in which ids were first seen, so the result is deterministic. An id
    repeated within one list counts at its best rank only.
    """
    if k < 0:
        raise ValueError("the RRF constant k must not be negative")
    scores: dict[str, float] = {}
    for ranking in rankings:
        seen: set[str] = set()
        for rank, item in enumerate(ranking, start=1):
            if item in seen:
                continue
            seen.add(item)
            scores[item] = scores.get(item, 0.0) + 1.0 / (k + rank)
    order = {item: n for n, item in enumerate(scores)}
    return sorted(scores.items(), key=lambda pair: (-pair[1], order[pair[0]]))


def fuse_hits(fulltext: Sequence[Hit], vector: Sequence[Hit], limit: int) -> list[Hit]:
    """The best ``limit`` of both rankings (each best first) by reciprocal rank fusion, with the
    fused scores; ``via`` is ``hybrid`` for a memory both found, else the one ranking's kind.
    ``vector``'s scores are cosine similarities: each fused hit keeps its own as ``similarity``."""
    memories = {hit.memory.id: hit.memory for hit in [*fulltext, *vector]}
    by_text = {hit.memory.id for hit in fulltext}
    similarity = {hit.memory.id: hit.score for hit in vector}
    fused = reciprocal_rank_fusion([[hit.memory.id for hit in fulltext], [hit.memory.id for hit in vector]])
    return [
        Hit(
            memory=memories[memory_id],
            score=score,
            via=_via(memory_id in by_text, memory_id in similarity),
            similarity=similarity.get(memory_id),
        )
        for memory_id, score in fused[: max(limit, 0)]
    ]


def _via(by_text: bool, by_vector: bool) -> HitKind:
    if by_text and by_vector:
        return "hybrid"
    return "fulltext" if by_text else "vector"
