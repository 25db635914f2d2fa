"""``bench/store_floor.py`` runs end to end at toy sizes and ends with its JSON line of figures.

Figures are not asserted (timing belongs in closing notes, not tests); this keeps the bench
runnable as the store's schema and statements change (it uses the hub's own)."""

from __future__ import annotations

from tests.bench import run_bench


def test_store_floor_bench_prints_every_figure() -> None:
    figures, printed = run_bench(
        "bench/store_floor.py",
        "--rate",
        "500",
        "--seconds",
        "0.2",
        "--repeat",
        "1",
        "--synchronous",
        "FULL,NORMAL",
        "--work-us",
        "0,10",
        "--cores",
        "0",
        timeout=50,
    )
    for mode in ("full", "normal"):
        for work in ("0", "10"):
            for key in ("p50_ms", "p99_ms", "max_ms", "cpu_us_per_msg", "commits_per_s"):
                assert isinstance(figures[f"{mode}_work{work}_{key}"], int | float), (mode, work, key)
    assert "FULL, 10 µs of work per message, 500/s" in printed
