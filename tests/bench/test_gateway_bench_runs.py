"""``bench/gateway.py`` runs end to end at toy sizes and ends with its JSON line of figures.

Figures are not asserted (timing belongs in closing notes, not tests)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_gateway_bench_prints_every_figure() -> None:
    proc = subprocess.run(
        [
            sys.executable,
            "bench/gateway.py",
            "--requests",
            "20",
            "--concurrency",
            "4",
            "--repeat",
            "1",
            "--ws-clients",
            "5",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=55,
    )
    assert proc.returncode == 0, proc.stderr
    figures = json.loads(proc.stdout.strip().splitlines()[-1])
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
    assert "through the hub" in proc.stdout
