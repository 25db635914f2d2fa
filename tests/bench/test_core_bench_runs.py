"""``bench/core.py`` runs end to end at toy sizes and ends with its JSON line of figures.

Figures are not asserted (timing belongs in closing notes, not tests); this keeps the bench
from rotting as the core changes."""

from __future__ import annotations

from tests.bench import run_bench


def test_core_bench_prints_every_figure() -> None:
    figures, printed = run_bench(
        "bench/core.py",
        "--messages",
        "200",
        "--conversations",
        "20",
        "--senders",
        "10",
        "--rate",
        "400",
        "--seconds",
        "0.2",
        "--repeat",
        "1",
        "--sweep",
        "200",
        "--distinct",
        "300",
        "--cores",
        "0",
        timeout=50,
    )
    for key in (
        "persist_msgs_per_s",
        "memory_msgs_per_s",
        "rate_full_p99_ms",
        "rate_normal_p99_ms",
        "rate_memory_p99_ms",
        "sweep_200_p99_ms",
        "rss_after_distinct_mb",
        "peak_rss_mb",
    ):
        assert isinstance(figures[key], int | float), key
    assert figures["rate_full_commits_per_s"] > 0
    assert "sweep at 200/s" in printed
