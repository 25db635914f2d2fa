"""``bench/memory.py`` runs end to end at toy sizes and ends with its JSON line of figures
(figures are not asserted: timing belongs in closing notes); and its labelled set holds what the
bench promises (``bench/memory_facts.py``)."""

from __future__ import annotations

import random
import re
from collections import Counter

import pytest

from bench.memory_facts import FACTS, NAMES, FactKind, generated_texts
from tests.bench import run_bench

try:
    from tests.pg_server import pg_bin_dir
except ImportError:  # psycopg missing: no PostgreSQL run
    HAS_POSTGRES = False
else:
    HAS_POSTGRES = pg_bin_dir() is not None

_KINDS: tuple[FactKind, ...] = ("paraphrase", "wordform", "rare", "hard")


def test_the_labelled_set_has_200_distinct_pairs_of_every_kind() -> None:
    assert len(FACTS) >= 200
    assert len({f.fact for f in FACTS}) == len({f.query for f in FACTS}) == len(FACTS)
    counts = Counter(f.kind for f in FACTS)
    assert all(counts[kind] >= 40 for kind in _KINDS), counts
    assert not [f for f in FACTS if f.query.lower().rstrip("?") in f.fact.lower()], "a query copies its fact"


def test_generated_memories_are_varied_and_never_name_a_labelled_person() -> None:
    texts = generated_texts(random.Random(1))
    sample = [next(texts) for _ in range(1000)]
    assert len(set(sample)) > 900
    words = {w for f in FACTS for w in re.findall(r"[A-Za-z]+", f"{f.fact} {f.query}")}
    assert not set(NAMES) & words


def test_memory_bench_prints_every_figure() -> None:
    figures, printed = run_bench(
        "bench/memory.py",
        *("--sizes", "100,200", "--timed", "10", "--backends", "sqlite,vector", "--distractors", "100"),
    )
    for backend in ("sqlite", "vector"):
        for size in (100, 200):
            for key in ("store_p50_ms", "store_p99_ms", "search_p50_ms", "search_p99_ms"):
                assert isinstance(figures[f"{backend}_{size}_{key}"], int | float), (backend, size, key)
    for path in ("fulltext", "vector", "hybrid"):
        for kind in ("all", *_KINDS):
            assert 0 <= figures[f"recall5_{path}_{kind}"] <= 1, (path, kind)
    for label in ("sqlite", "vector"):
        for key in ("mean", "p50", "max", "turns_with_note"):
            assert isinstance(figures[f"recall_tokens_{label}_{key}"], int | float), (label, key)
    assert "postgres" not in printed
    assert "recall@5 hybrid" in printed


def test_a_backend_that_cannot_run_is_skipped_with_a_note() -> None:
    figures, printed = run_bench("bench/memory.py", "--sizes", "50", "--timed", "5", "--backends", "sqlite,nosuch")
    assert "sqlite_50_search_p99_ms" in figures
    assert "unknown backend" in figures["nosuch_skipped"]
    assert "nosuch: skipped" in printed


@pytest.mark.skipif(not HAS_POSTGRES, reason="no PostgreSQL server binaries")
def test_memory_bench_runs_on_postgres() -> None:
    figures, _ = run_bench(
        "bench/memory.py",
        *("--sizes", "100", "--timed", "5", "--backends", "postgres", "--distractors", "50"),
        timeout=55,
    )
    assert isinstance(figures["postgres_100_search_p99_ms"], int | float)
    assert 0 <= figures["recall5_postgres_hybrid_all"] <= 1
