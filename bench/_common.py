"""Shared helpers for benchmarks: percentiles, peak RSS, the closing JSON line."""

from __future__ import annotations

import json
import resource
import statistics
import sys
from collections.abc import Sequence
from typing import Any


def percentile(values: Sequence[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))
    return ordered[k]


def latency_figures(prefix: str, seconds: Sequence[float]) -> dict[str, float]:
    ms = [s * 1000 for s in seconds]
    return {
        f"{prefix}min_ms": round(min(ms), 3) if ms else float("nan"),
        f"{prefix}p50_ms": round(percentile(ms, 50), 3),
        f"{prefix}p99_ms": round(percentile(ms, 99), 3),
        f"{prefix}mean_ms": round(statistics.fmean(ms), 3) if ms else float("nan"),
    }


def median_run(runs: Sequence[dict[str, Any]], key: str) -> dict[str, Any]:
    """The run whose ``key`` figure is the median (the upper one of an even count)."""
    return sorted(runs, key=lambda r: r[key])[len(runs) // 2]


def peak_rss_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def current_rss_mb() -> float:
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    import os

    return round(pages * os.sysconf("SC_PAGE_SIZE") / 2**20, 1)


def emit(figures: dict[str, Any]) -> None:
    """Every bench ends with exactly one JSON line of figures."""
    sys.stdout.write(json.dumps(figures) + "\n")
    sys.stdout.flush()
