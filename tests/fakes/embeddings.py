"""A deterministic stand-in for an embedding model: the vectors ``FakeOpenAI``'s ``/v1/embeddings``
answers with, importable on its own so benchmarks can embed without a server.

A text's vector is feature hashing of its lower-cased word stems (weight 1) and the character
trigrams of its words (weight 0.5) into ``dimensions`` signed buckets, L2-normalised. Related
forms share stems or most trigrams ("running" ~ "run", "photographer" ~ "photography"), so
cosine similarity behaves like a crude model's; unrelated texts score near 0. The hash is
blake2b, so vectors are equal across processes (Python's ``hash`` is salted per process).
"""

from __future__ import annotations

import math
import re
from functools import lru_cache
from hashlib import blake2b

__all__ = ["DIMENSIONS", "fake_embedding"]

DIMENSIONS = 256

_WORD = re.compile(r"\w+")
_SUFFIXES = ("ing", "ers", "er", "ed", "es", "s", "ly")
_STOP_WORDS = frozenset(
    "a an and are at be did do does for from has have i in is it me my of on or our the their to was"
    " we what when where which who why with you your".split()
)


def _stem(word: str) -> str:
    for suffix in _SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            word = word[: -len(suffix)]
            break
    if len(word) > 3 and word[-1] == word[-2] and word[-1] not in "lsz":  # running → runn → run
        word = word[:-1]
    return word


@lru_cache(maxsize=65536)
def _bucket(feature: str, dimensions: int) -> tuple[int, float]:
    digest = int.from_bytes(blake2b(feature.encode(), digest_size=8).digest(), "little")
    return digest % dimensions, (1.0 if digest >> 63 else -1.0)


def fake_embedding(text: str, dimensions: int = DIMENSIONS) -> list[float]:
    """``text``'s vector: ``dimensions`` floats of unit length (all zero for a text with no words)."""
    vector = [0.0] * dimensions
    for word in _WORD.findall(text.lower()):
        if word in _STOP_WORDS:
            continue
        features = [("w:" + _stem(word), 1.0)]
        padded = f"#{word}#"
        features += [("t:" + padded[i : i + 3], 0.5) for i in range(len(padded) - 2)]
        for feature, weight in features:
            index, sign = _bucket(feature, dimensions)
            vector[index] += sign * weight
    norm = math.sqrt(sum(x * x for x in vector))
    return [x / norm for x in vector] if norm else vector
