"""``bench/gateway.py`` runs end to end at toy sizes and ends with its JSON line of figures.

Figures are not asserted (timing belongs in closing notes, not tests)."""

from __future__ import annotations

from tests.bench import run_bench


def test_gateway_bench_prints_every_figure() -> None:
    figures, printed = run_bench(
        "bench/gateway.py", "--requests", "20", "--concurrency", "4", "--repeat", "1", "--ws-clients", "5", timeout=55
    )
    for key in (
        "bare_rps",
        "hub_rps",
        "hub_p50_ms",
        "hub_p99_ms",
        "ratio",
        "hub_cpu_ms_per_request",
        "bare_client_busy",
        "server_cpu_ratio",
        "sse_ttfb_overhead_ms",
        "ws_idle_rss_added_mb",
    ):
        assert isinstance(figures[key], int | float), key
    assert [r["kind"] for r in figures["runs"]] == ["bare", "hub", "bare_sse", "hub_sse"]
    assert "through the hub" in printed
