"""``bench/mcp.py`` runs at toy sizes and ends with its JSON line (figures are not asserted)."""

from __future__ import annotations

from tests.bench import run_bench


def test_mcp_bench_prints_every_figure() -> None:
    figures, _printed = run_bench("bench/mcp.py", "--calls", "5", timeout=50)
    for key in ("direct_p50_ms", "stdio_p50_ms", "stdio_p99_ms", "http_p50_ms", "http_p99_ms", "http_overhead_p50_ms"):
        assert isinstance(figures[key], int | float), key
