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
        [sys.executable, "bench/gateway.py", "--requests", "20", "--concurrency", "4", "--ws-clients", "5"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=55,
    )
    assert proc.returncode == 0, proc.stderr
    figures = json.loads(proc.stdout.strip().splitlines()[-1])
    for key in ("bare_rps", "hub_rps", "hub_p50_ms", "hub_p99_ms", "ratio", "sse_ttfb_overhead_ms"):
        assert isinstance(figures[key], int | float), key
    assert "through the hub" in proc.stdout
