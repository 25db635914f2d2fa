"""Reciprocal rank fusion: one ranking from several (full text and vector, for hybrid search).

Each list contributes ``1 / (k + rank)`` to an id's score, rank counted from 1, so an id high in
any list rises and one found by both rises most; scores need not be comparable across lists.
``k = 60`` is the constant of Cormack, Clarke and Büttcher's paper (SIGIR 2009).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

__all__ = ["RRF_K", "reciprocal_rank_fusion"]

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
